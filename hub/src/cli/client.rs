//! The admin API client: finds the hub (local data dir or `--server`),
//! verifies its certificate, and turns HTTP and TLS failures into messages
//! a person can act on.

use super::Target;
use super::login;
use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use switchyard_certs::BootstrapProbe;
use switchyard_hub::api::ErrorBody;
use switchyard_hub::paths::{self, Endpoints};

/// The hub answered with an error status.
#[derive(Debug, thiserror::Error)]
#[error("{message} (HTTP {status})")]
pub(crate) struct HttpError {
    pub(crate) status: u16,
    pub(crate) message: String,
}

pub(crate) struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
    trust: Trust,
}

/// How the hub's certificate is verified, kept to explain a failure.
enum Trust {
    /// `http://` on loopback (`serve --http-insecure`).
    Plain,
    CaFile(PathBuf),
    Pin {
        pin: String,
        probe: BootstrapProbe,
    },
}

impl AdminClient {
    /// `--server` plus `SWITCHYARD_TOKEN`, or the hub that runs on this
    /// machine with `data_dir` (default: the same default as `serve`).
    pub(crate) fn discover(target: &Target) -> anyhow::Result<Self> {
        let env_token = std::env::var("SWITCHYARD_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        // A stored sign-in (`switchyard login`) trusts the hub as it did then.
        let mut target = target.clone();
        let (base, token, local_ca) = match &target.server {
            Some(server) => {
                let token = match env_token {
                    Some(token) => token,
                    None => {
                        let config = login::ClientConfig::load()?;
                        let context = config.context(server).ok_or_else(|| {
                            anyhow!(
                                "--server needs an admin token: set SWITCHYARD_TOKEN, or sign in with `switchyard login --server {server}`"
                            )
                        })?;
                        if target.server_ca_file.is_none() && target.ca_sha256.is_none() {
                            target.server_ca_file = context.server_ca_file.clone();
                            target.ca_sha256 = context.ca_sha256.clone();
                        }
                        login::usable_token(context)?
                    }
                };
                (server.trim_end_matches('/').to_owned(), token, None)
            }
            None => {
                let dir = target
                    .data_dir
                    .clone()
                    .unwrap_or_else(paths::default_data_dir);
                let endpoint_file = paths::endpoint_file(&dir);
                if target.data_dir.is_none() && env_token.is_none() && !endpoint_file.exists() {
                    // No hub on this machine: the hub of the current sign-in.
                    let config = login::ClientConfig::load()?;
                    if let Some(context) = config.current() {
                        target.server_ca_file = context.server_ca_file.clone();
                        target.ca_sha256 = context.ca_sha256.clone();
                        let token = login::usable_token(context)?;
                        let (tls, trust) = tls_for(&context.server, &target, None)?;
                        return Self::build(context.server.clone(), token, tls, trust);
                    }
                }
                let endpoints: Endpoints = match std::fs::read(&endpoint_file) {
                    Ok(bytes) => serde_json::from_slice(&bytes)
                        .with_context(|| format!("reading {}", endpoint_file.display()))?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                        "no hub found in {}: start one with `switchyard serve --data-dir {}`, or use --server URL with SWITCHYARD_TOKEN",
                        dir.display(),
                        dir.display()
                    ),
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("reading {}", endpoint_file.display()));
                    }
                };
                let token = match env_token {
                    Some(token) => token,
                    None => {
                        let path = paths::admin_token_file(&dir);
                        std::fs::read_to_string(&path)
                            .with_context(|| format!("reading the admin token {}", path.display()))?
                            .trim()
                            .to_owned()
                    }
                };
                (endpoints.admin_url, token, Some(paths::ca_cert_file(&dir)))
            }
        };
        let (tls, trust) = tls_for(&base, &target, local_ca)?;
        Self::build(base, token, tls, trust)
    }

    fn build(
        base: String,
        token: String,
        tls: Option<rustls::ClientConfig>,
        trust: Trust,
    ) -> anyhow::Result<Self> {
        let mut http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        if let Some(tls) = tls {
            http = http.tls_backend_preconfigured(tls);
        }
        let http = http.build().context("building the HTTP client")?;
        Ok(Self {
            http,
            base,
            token,
            trust,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Send with the token; the body of a successful answer, or the hub's
    /// error message.
    async fn send_raw(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Vec<u8>> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let body = response.bytes().await.context("reading the hub's answer")?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&body)
                .map(|b| b.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(HttpError {
                status: status.as_u16(),
                message,
            }
            .into());
        }
        Ok(body.to_vec())
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let body = self.send_raw(request).await?;
        serde_json::from_slice(&body).context("the hub's answer is not the expected JSON")
    }

    /// Why a request did not get an answer, naming the certificate problem
    /// when there is one.
    fn unreachable(&self, error: &reqwest::Error) -> anyhow::Error {
        let base = &self.base;
        let Some(tls) = rustls_error(error) else {
            let chain = switchyard_common::error_chain(error);
            let hint = if matches!(self.trust, Trust::Plain) {
                " (the admin API speaks HTTPS unless the hub runs with --http-insecure)"
            } else {
                ""
            };
            return anyhow!(
                "cannot reach the hub at {base}: {chain}; is `switchyard serve` running?{hint}"
            );
        };
        use rustls::CertificateError as C;
        let rustls::Error::InvalidCertificate(problem) = tls else {
            return anyhow!("TLS with the hub at {base} failed: {tls}");
        };
        match (problem, &self.trust) {
            (C::NotValidForName | C::NotValidForNameContext { .. }, _) => anyhow!(
                "the hub's certificate does not name the host in {base}; use one of the names \
                 the hub was started with (--public-name, localhost, 127.0.0.1, ::1)"
            ),
            (C::Expired | C::ExpiredContext { .. }, _) => anyhow!(
                "the hub at {base} presented an expired certificate; restart the hub to renew it \
                 (or check this machine's clock)"
            ),
            (_, Trust::Pin { pin, probe }) => anyhow!(
                "the hub at {base} is not the one you pinned: expected its CA to have SHA-256 \
                 {pin}, it presented {}; check --ca-sha256 / SWITCHYARD_CA_SHA256",
                match probe.presented_ca_fingerprints() {
                    seen if seen.is_empty() => "no CA certificate".to_owned(),
                    seen => seen.join(", "),
                }
            ),
            (_, Trust::CaFile(file)) => anyhow!(
                "the hub at {base} presented a certificate not signed by the CA in {} ({problem:?}); \
                 use the CA of that hub (its DATA_DIR/ca/ca.pem) with --server-ca-file / \
                 SWITCHYARD_CA_FILE, or pin it with --ca-sha256",
                file.display()
            ),
            (_, Trust::Plain) => {
                anyhow!("the hub at {base} presented an invalid certificate: {problem:?}")
            }
        }
    }

    /// POST without a body and take the answer as bytes (backups).
    pub(crate) async fn post_for_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        self.send_raw(self.http.post(self.url(path))).await
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.get(self.url(path))).await
    }

    /// [`get`](Self::get) for a request the hub may hold up to `wait`
    /// (it waits for agents), beyond the client's usual timeout.
    pub(crate) async fn get_waiting<T: DeserializeOwned>(
        &self,
        path: &str,
        wait: std::time::Duration,
    ) -> anyhow::Result<T> {
        let timeout = wait + std::time::Duration::from_secs(15);
        self.send(self.http.get(self.url(path)).timeout(timeout))
            .await
    }

    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    pub(crate) async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        self.send(self.http.patch(self.url(path)).json(body)).await
    }

    pub(crate) async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        self.send(self.http.put(self.url(path)).json(body)).await
    }

    pub(crate) async fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.delete(self.url(path))).await
    }
}

/// The TLS configuration for `base`: `--server-ca-file` or `--ca-sha256` when
/// given, else the local hub's CA, else a clear refusal. Plain `http://` gets
/// no TLS at all.
/// An HTTP client for the hub at `base`, trusting it as the connection
/// flags say, for requests that carry no token (`switchyard login`).
pub(crate) fn hub_http(base: &str, target: &Target) -> anyhow::Result<reqwest::Client> {
    let (tls, _) = tls_for(base, target, None)?;
    let mut http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
    if let Some(tls) = tls {
        http = http.tls_backend_preconfigured(tls);
    }
    http.build().context("building the HTTP client")
}

fn tls_for(
    base: &str,
    target: &Target,
    local_ca: Option<PathBuf>,
) -> anyhow::Result<(Option<rustls::ClientConfig>, Trust)> {
    if base.starts_with("http://") {
        plain_http_allowed(base)?;
        return Ok((None, Trust::Plain));
    }
    if !base.starts_with("https://") {
        bail!(
            "--server {base:?} must start with https:// (or http:// for a hub on loopback started with --http-insecure)"
        );
    }
    if let Some(pin) = &target.ca_sha256 {
        let (config, probe) = switchyard_certs::admin_pinned_client_config(pin)
            .context("--ca-sha256 / SWITCHYARD_CA_SHA256")?;
        let pin = pin.clone();
        return Ok((Some(config), Trust::Pin { pin, probe }));
    }
    let file = match target.server_ca_file.clone().or(local_ca) {
        Some(file) => file,
        None => bail!(
            "{base} is HTTPS: say which CA signs the hub's certificate with --server-ca-file FILE \
             (the hub's DATA_DIR/ca/ca.pem) or --ca-sha256 HEX (from its join commands), \
             or SWITCHYARD_CA_FILE / SWITCHYARD_CA_SHA256"
        ),
    };
    let pem = std::fs::read_to_string(&file)
        .with_context(|| format!("reading the hub's CA certificate {}", file.display()))?;
    let config = switchyard_certs::admin_client_config(&pem)
        .with_context(|| format!("{} is not a PEM CA certificate", file.display()))?;
    Ok((Some(config), Trust::CaFile(file)))
}

/// Plain HTTP carries the admin token in the clear: only to this machine
/// (a loopback address, or `localhost`), where the hub itself allows it
/// (`serve --http-insecure`). Anywhere else the token would cross a network.
fn plain_http_allowed(base: &str) -> anyhow::Result<()> {
    let url =
        reqwest::Url::parse(base).with_context(|| format!("--server {base:?} is not a URL"))?;
    // The parser normalizes the host (`http://2130706433` is 127.0.0.1).
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!(
            "refusing to send the admin token over plain HTTP to {base}: http:// is only for a hub on \
             this machine (a loopback address or localhost); use https:// with --server-ca-file FILE \
             or --ca-sha256 HEX"
        );
    }
    Ok(())
}

/// The TLS error under a failed request, if that is what failed. An
/// `io::Error` hides the error it wraps from `source()` (and the TLS
/// connector wraps one `io::Error` in another), so look inside those.
fn rustls_error(error: &reqwest::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::plain_http_allowed;

    #[test]
    fn plain_http_goes_to_loopback_only() {
        for ok in [
            "http://127.0.0.1:7701",
            "http://127.8.9.10:7701/",
            "http://[::1]:7701",
            "http://localhost:7701",
            "http://LOCALHOST",
        ] {
            assert!(plain_http_allowed(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://10.0.0.5:7701",
            "http://hub.example.com:7701",
            "http://0.0.0.0:7701",
            "http://[::]:7701",
            "http://[fe80::1]:7701",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
        ] {
            let error = plain_http_allowed(refused).unwrap_err().to_string();
            assert!(error.contains("plain HTTP"), "{refused}: {error}");
        }
    }
}
