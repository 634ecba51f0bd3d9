//! The admin API client: finds the hub (local data dir or `--server`) and
//! turns HTTP failures into messages a person can act on.

use super::Target;
use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
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
}

impl AdminClient {
    /// `--server` plus `SWITCHYARD_TOKEN`, or the hub that runs on this
    /// machine with `data_dir` (default: the same default as `serve`).
    pub(crate) fn discover(target: &Target) -> anyhow::Result<Self> {
        let (data_dir, server) = (target.data_dir.clone(), target.server.clone());
        let env_token = std::env::var("SWITCHYARD_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        let (base, token) = match server {
            Some(server) => {
                let token = env_token.ok_or_else(|| {
                    anyhow!("--server needs an admin token: set SWITCHYARD_TOKEN")
                })?;
                (server.trim_end_matches('/').to_owned(), token)
            }
            None => {
                let dir = data_dir.unwrap_or_else(paths::default_data_dir);
                let endpoint_file = paths::endpoint_file(&dir);
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
                (endpoints.admin_url, token)
            }
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { http, base, token })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Send with the token; the body of a successful answer, or the hub's
    /// error message.
    async fn send_raw(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Vec<u8>> {
        let response = request.bearer_auth(&self.token).send().await.map_err(|e| {
            anyhow!(
                "cannot reach the hub at {}: {e}; is `switchyard serve` running?",
                self.base
            )
        })?;
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

    /// POST without a body and take the answer as bytes (backups).
    pub(crate) async fn post_for_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        self.send_raw(self.http.post(self.url(path))).await
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.get(self.url(path))).await
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
