//! Repos the hub follows: checking and storing their settings, and
//! fetching them (with the progress shown while a fetch runs).

use super::requests::FetchActivity;
use super::webhooks::read_webhook_secret;
use super::{Error, GitOps, RepoRequest, RepoView, Result, invalid};
use crate::clock::rfc3339;
use crate::clock::unix_now;
use crate::git::{self, Credentials, RepoSpec};
use crate::store::{FetchState, RepoKind, RepoRecord};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_common::{NameKind, validate_name};
use tracing::{debug, info, warn};

impl GitOps {
    pub fn repo_view(&self, repo: &RepoRecord) -> RepoView {
        RepoView {
            name: repo.name.clone(),
            kind: repo.kind.as_str().to_owned(),
            // Records from older versions may carry credentials.
            url: git::redact_url(&repo.url),
            branch: repo.branch.clone(),
            interval: humantime::format_duration(Duration::from_secs(repo.interval_secs))
                .to_string(),
            username: repo.username.clone(),
            password_file: repo.password_file.clone(),
            ca_file: repo.ca_file.clone(),
            plain_http: repo.plain_http,
            webhook_secret_file: repo.webhook_secret_file.clone(),
            created_at: rfc3339(repo.created_at),
            last_fetch: repo.fetch.last_attempt.map(rfc3339),
            last_success: repo.fetch.last_success.map(rfc3339),
            error: repo.fetch.error.clone(),
            head: repo
                .fetch
                .refs
                .get(&format!("refs/heads/{}", repo.branch))
                .cloned(),
            refs: repo.fetch.refs.len(),
            fetching: self
                .fetching
                .lock()
                .expect("fetching lock")
                .get(&repo.name)
                .cloned(),
        }
    }

    /// Check a repo's parameters and build its record (nothing is stored).
    /// The files it names must exist on the hub's machine.
    pub fn check_repo(&self, request: RepoRequest) -> Result<RepoRecord> {
        validate_name(NameKind::Repo, &request.name)?;
        let kind = request.kind.unwrap_or_default();
        let url = match kind {
            RepoKind::Oci => check_oci_url(&request.url)?,
            _ => check_url(&request.url)?,
        };
        if kind != RepoKind::Git {
            if kind == RepoKind::Helm
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return Err(invalid(
                    "url",
                    format!("{url:?}: a chart repository is served over https:// or http://"),
                ));
            }
            if request.branch.as_ref().is_some_and(|b| !b.is_empty())
                || request.webhook_secret_file.is_some()
            {
                return Err(invalid(
                    "type",
                    "a chart repository has no branch and takes no webhooks",
                ));
            }
        }
        if request.password_file.is_some() != request.username.is_some() {
            return Err(invalid(
                "credentials",
                "--username and --password-file go together",
            ));
        }
        check_plain_http(kind, &url, request.plain_http, request.username.is_some())
            .map_err(|e| invalid("plain-http", e))?;
        for (field, file) in [
            ("password-file", &request.password_file),
            ("ca-file", &request.ca_file),
            ("webhook-secret-file", &request.webhook_secret_file),
        ] {
            if let Some(file) = file
                && let Err(e) = std::fs::metadata(file)
            {
                return Err(invalid(field, format!("{file}: {e}")));
            }
        }
        if let Some(file) = &request.webhook_secret_file
            && let Err(e) = read_webhook_secret(std::path::Path::new(file))
        {
            return Err(invalid("webhook-secret-file", format!("{file}: {e}")));
        }
        let interval_secs = request.interval_secs.unwrap_or(30);
        if interval_secs == 0 {
            return Err(invalid("interval", "must be at least 1s"));
        }
        Ok(RepoRecord {
            name: request.name.clone(),
            kind,
            url,
            branch: match kind {
                RepoKind::Git => request.branch.unwrap_or_else(|| "main".into()),
                RepoKind::Helm | RepoKind::Oci => String::new(),
            },
            interval_secs,
            username: request.username,
            password_file: request.password_file,
            ca_file: request.ca_file,
            plain_http: request.plain_http,
            webhook_secret_file: request.webhook_secret_file,
            created_at: unix_now(),
            fetch: FetchState::default(),
        })
    }

    pub fn add_repo(self: &Arc<Self>, request: RepoRequest) -> Result<RepoView> {
        let repo = self.check_repo(request)?;
        self.store.create_repo(&repo)?;
        info!(repo = %repo.name, url = %git::redact_url(&repo.url), "repo added");
        self.spawn_poller(&repo.name);
        Ok(self.repo_view(&repo))
    }

    /// Replace a repo's settings (`apply`). Its fetch state is kept unless
    /// the URL changed; either way it is fetched again at once, and apps
    /// following its branch follow a changed branch.
    pub async fn replace_repo(
        self: &Arc<Self>,
        name: &str,
        request: RepoRequest,
    ) -> Result<RepoView> {
        if request.name != name {
            return Err(invalid("name", "a repo cannot be renamed"));
        }
        let new = self.check_repo(request)?;
        let updated = self
            .store
            .update_repo(name, true, &mut |r| {
                // Refs of an OCI registry hold blob URLs with the scheme.
                let fetch = if r.url == new.url && r.plain_http == new.plain_http {
                    std::mem::take(&mut r.fetch)
                } else {
                    FetchState::default()
                };
                *r = RepoRecord {
                    created_at: r.created_at,
                    fetch,
                    ..new.clone()
                };
            })?
            .ok_or_else(|| Error::RepoNotFound(name.to_owned()))?;
        info!(repo = %name, url = %git::redact_url(&updated.url), "repo changed");
        self.spawn_poller(name);
        self.reconcile("admin").await?;
        Ok(self.repo_view(&updated))
    }

    pub fn repos(&self) -> Result<Vec<RepoView>> {
        Ok(self
            .store
            .repos()?
            .iter()
            .map(|r| self.repo_view(r))
            .collect())
    }

    pub fn repo(&self, name: &str) -> Result<RepoView> {
        let repo = self
            .store
            .repo(name)?
            .ok_or_else(|| Error::RepoNotFound(name.to_owned()))?;
        Ok(self.repo_view(&repo))
    }

    pub async fn remove_repo(&self, name: &str) -> Result<RepoView> {
        let users: Vec<String> = self
            .store
            .apps()?
            .into_iter()
            .filter(|a| a.repo == name)
            .map(|a| a.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::RepoInUse {
                repo: name.to_owned(),
                apps: users.join(", "),
            });
        }
        let removed = self
            .store
            .remove_repo(name)?
            .ok_or_else(|| Error::RepoNotFound(name.to_owned()))?;
        if let Some(poller) = self.pollers.lock().expect("pollers lock").remove(name) {
            poller.stop();
        }
        let git = self.git.clone();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || git.remove(&name))
            .await
            .map_err(Error::Task)??;
        Ok(self.repo_view(&removed))
    }

    /// Ask the repo's poller to fetch now (webhooks).
    pub fn fetch_soon(&self, repo: &str) -> bool {
        match self.pollers.lock().expect("pollers lock").get(repo) {
            Some(poller) => {
                poller.wake();
                true
            }
            None => false,
        }
    }

    /// The revisions of `repo` the hub follows: its branch, and every
    /// app's revision on it. Only these are fetched.
    fn tracked_revisions(&self, repo: &RepoRecord) -> Result<Vec<String>> {
        let mut tracked = vec![repo.branch.clone()];
        for app in self.store.apps()? {
            if app.repo == repo.name
                && let Some(revision) = app.revision
            {
                tracked.push(revision);
            }
        }
        tracked.sort();
        tracked.dedup();
        Ok(tracked)
    }

    fn spec(&self, repo: &RepoRecord) -> Result<RepoSpec> {
        let credentials = credentials(repo)?;
        Ok(RepoSpec {
            url: repo.url.clone(),
            credentials,
            ca_file: repo.ca_file.as_ref().map(PathBuf::from),
            tracked: self.tracked_revisions(repo)?,
            limits: self.fetch_limits,
        })
    }

    /// Fetch a repo now, record the outcome, and replan when refs moved.
    pub(crate) async fn fetch_repo(&self, name: &str, trigger: &str) -> Result<()> {
        let span = tracing::info_span!("fetch", repo = %name, trigger);
        tracing::Instrument::instrument(self.fetch_repo_now(name, trigger), span).await
    }

    async fn fetch_repo_now(&self, name: &str, trigger: &str) -> Result<()> {
        let repo = self
            .store
            .repo(name)?
            .ok_or_else(|| Error::RepoNotFound(name.to_owned()))?;
        let first = repo.fetch.last_success.is_none();
        let started = std::time::Instant::now();
        let mut tracked = Vec::new();
        let outcome = if repo.kind != RepoKind::Git {
            let source = chart_source(&repo);
            // An OCI registry lists no index: the charts apps use are asked for.
            let mut charts: Vec<String> = self
                .store
                .apps()?
                .into_iter()
                .filter(|a| a.repo == repo.name)
                .filter_map(|a| a.chart)
                .collect();
            charts.sort();
            charts.dedup();
            let (kind, known) = (repo.kind, repo.fetch.refs.clone());
            if kind == RepoKind::Oci {
                tracked.clone_from(&charts);
            }
            let activity = ActivityGuard::start(self.fetching.clone(), name);
            activity.update(git::FetchProgress {
                stage: "reading index.yaml".into(),
                done: 0,
                total: None,
            });
            match source {
                Ok(source) => tokio::task::spawn_blocking(move || {
                    let _activity = activity;
                    match kind {
                        RepoKind::Oci => crate::charts::fetch_oci(&source, &charts, &known),
                        _ => crate::charts::fetch_index(&source),
                    }
                })
                .await
                .map_err(Error::Task)?
                .map(|refs| git::FetchResult {
                    refs,
                    bytes_received: 0,
                })
                .map_err(Error::Chart),
                Err(e) => Err(e),
            }
        } else {
            match self.spec(&repo) {
                Ok(spec) => {
                    tracked.clone_from(&spec.tracked);
                    let git = self.git.clone();
                    let repo_name = name.to_owned();
                    let activity = ActivityGuard::start(self.fetching.clone(), name);
                    tokio::task::spawn_blocking(move || {
                    git.fetch(&repo_name, &spec, &|p: git::FetchProgress| {
                        debug!(repo = %repo_name, stage = %p.stage, done = p.done, total = ?p.total, "fetch progress");
                        activity.update(p);
                    })
                })
                .await
                .map_err(Error::Task)?
                .map_err(Error::Git)
                }
                Err(e) => Err(e),
            }
        };
        let took = started.elapsed();
        crate::metrics::Metrics::observe(
            &self.fleet.metrics().git_fetch_seconds,
            crate::metrics::Outcome::of(&outcome),
            took,
        );
        let now = unix_now();
        match outcome {
            Ok(result) => {
                let moved =
                    result.refs != repo.fetch.refs || tracked != repo.fetch.tracked || first;
                self.store.update_repo(name, false, &mut |r| {
                    r.fetch.last_attempt = Some(now);
                    r.fetch.last_success = Some(now);
                    r.fetch.error = None;
                    r.fetch.consecutive_failures = 0;
                    r.fetch.refs = result.refs.clone();
                    r.fetch.tracked.clone_from(&tracked);
                })?;
                info!(
                    bytes = result.bytes_received,
                    moved,
                    elapsed_ms = took.as_millis() as u64,
                    "fetched"
                );
                if moved {
                    self.reconcile(trigger).await?;
                }
                Ok(())
            }
            Err(error) => {
                let message = error.to_string();
                warn!(error = %message, elapsed_ms = took.as_millis() as u64, "fetch failed; assignments stay as they are");
                self.store.update_repo(name, false, &mut |r| {
                    r.fetch.last_attempt = Some(now);
                    r.fetch.error = Some(message.clone());
                    r.fetch.consecutive_failures += 1;
                })?;
                Err(error)
            }
        }
    }
}

/// How to reach a chart repository.
pub(super) fn chart_source(repo: &RepoRecord) -> Result<crate::charts::Source> {
    Ok(crate::charts::Source {
        url: repo.url.clone(),
        credentials: credentials(repo)?.map(|c| (c.username, c.password)),
        ca_file: repo.ca_file.as_ref().map(PathBuf::from),
        plain_http: repo.plain_http,
    })
}

/// The user name and the password read from its file, if the repo has them.
fn credentials(repo: &RepoRecord) -> Result<Option<Credentials>> {
    Ok(match (&repo.username, &repo.password_file) {
        (Some(username), Some(file)) => {
            let password = std::fs::read_to_string(file)
                .map_err(|e| invalid("password-file", format!("{file}: {e}")))?;
            Some(Credentials {
                username: username.clone(),
                password: password.trim_end_matches(['\n', '\r']).to_owned(),
            })
        }
        _ => None,
    })
}

/// Publishes one fetch's progress while it runs and withdraws it when
/// dropped, whichever way the fetch ends.
struct ActivityGuard {
    fetching: Arc<Mutex<HashMap<String, FetchActivity>>>,
    repo: String,
}

impl ActivityGuard {
    fn start(fetching: Arc<Mutex<HashMap<String, FetchActivity>>>, repo: &str) -> Self {
        fetching.lock().expect("fetching lock").insert(
            repo.to_owned(),
            FetchActivity {
                stage: "starting".into(),
                done: 0,
                total: None,
                started_at: rfc3339(unix_now()),
            },
        );
        Self {
            fetching,
            repo: repo.to_owned(),
        }
    }

    fn update(&self, progress: git::FetchProgress) {
        if let Some(a) = self
            .fetching
            .lock()
            .expect("fetching lock")
            .get_mut(&self.repo)
        {
            a.stage = progress.stage;
            a.done = progress.done;
            a.total = progress.total;
        }
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        if let Ok(mut fetching) = self.fetching.lock() {
            fetching.remove(&self.repo);
        }
    }
}

/// A repo URL, trimmed, with a scheme the hub can fetch and no
/// credentials in it (they would be stored, logged, shown to viewers and
/// exported with the URL).
pub fn check_url(url: &str) -> Result<String> {
    let url = url.trim();
    if git::carries_credentials(url) {
        return Err(invalid(
            "url",
            format!(
                "{:?} carries credentials, which would be stored, logged and shown with the URL: \
                 remove them from the URL and give the user name with --username and the \
                 password or token in a file on the hub's machine with --password-file \
                 (spec.username and spec.passwordFile in a Repo document)",
                git::redact_url(url)
            ),
        ));
    }
    if !["https://", "http://", "git://", "ssh://", "file://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        return Err(invalid(
            "url",
            format!("{url:?}: use an https://, http://, git://, ssh:// or file:// URL"),
        ));
    }
    Ok(url.to_owned())
}

/// An `oci://host/path` URL, trimmed, without credentials.
pub fn check_oci_url(url: &str) -> Result<String> {
    let url = url.trim();
    let Some(rest) = url.strip_prefix("oci://") else {
        return Err(invalid(
            "url",
            format!("{url:?}: an OCI registry's URL is oci://HOST/PATH"),
        ));
    };
    check_url(&format!("https://{rest}"))?;
    Ok(url.trim_end_matches('/').to_owned())
}

/// Whether a repo may be reached over plain HTTP: only an OCI registry
/// (Git and Helm repositories say http:// in their URL), and with a
/// password only on this machine, where no one else can read it on the way.
pub fn check_plain_http(
    kind: RepoKind,
    url: &str,
    plain_http: bool,
    credentials: bool,
) -> std::result::Result<(), String> {
    if !plain_http {
        return Ok(());
    }
    if kind != RepoKind::Oci {
        return Err(format!(
            "--plain-http is for OCI registries (--type oci); a {} repository \
             over plain HTTP is given an http:// URL",
            kind.as_str()
        ));
    }
    if credentials && !oci_host_is_loopback(url) {
        return Err(format!(
            "{url}: refusing to send a password over plain HTTP to a host other than \
             loopback; serve the registry over HTTPS (--ca-file for a private CA)"
        ));
    }
    Ok(())
}

/// Whether `oci://HOST[:PORT]/PATH` names this machine.
fn oci_host_is_loopback(url: &str) -> bool {
    let rest = url.strip_prefix("oci://").unwrap_or(url);
    reqwest::Url::parse(&format!("http://{rest}"))
        .ok()
        .and_then(|u| match u.host()? {
            url::Host::Domain(d) => Some(d.eq_ignore_ascii_case("localhost")),
            url::Host::Ipv4(ip) => Some(ip.is_loopback()),
            url::Host::Ipv6(ip) => Some(ip.is_loopback()),
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_for_oci_and_a_password_stays_on_loopback() {
        let oci = RepoKind::Oci;
        assert_eq!(
            check_plain_http(oci, "oci://r.example.com/c", false, true),
            Ok(())
        );
        assert_eq!(
            check_plain_http(oci, "oci://r.example.com/c", true, false),
            Ok(())
        );
        for local in [
            "oci://127.0.0.1:5000/charts",
            "oci://localhost:5000",
            "oci://[::1]:5000/c",
        ] {
            assert_eq!(check_plain_http(oci, local, true, true), Ok(()), "{local}");
        }
        for remote in [
            "oci://r.example.com/charts",
            "oci://10.0.0.1:5000/c",
            "oci://localhost.example.com/c",
        ] {
            let e = check_plain_http(oci, remote, true, true).unwrap_err();
            assert!(e.contains("password over plain HTTP"), "{remote}: {e}");
        }
        for kind in [RepoKind::Git, RepoKind::Helm] {
            let e = check_plain_http(kind, "https://h/x", true, false).unwrap_err();
            assert!(e.contains("--type oci"), "{e}");
        }
    }

    #[test]
    fn a_fetch_is_shown_while_it_runs_and_withdrawn_however_it_ends() {
        let fetching: Arc<Mutex<HashMap<String, FetchActivity>>> = Arc::default();
        let shown = |repo: &str| fetching.lock().unwrap().get(repo).cloned();
        let guard = ActivityGuard::start(fetching.clone(), "config");
        assert_eq!(shown("config").unwrap().stage, "starting");
        guard.update(git::FetchProgress {
            stage: "receiving pack".into(),
            done: 40,
            total: Some(100),
        });
        let now = shown("config").unwrap();
        assert_eq!(
            (now.stage.as_str(), now.done, now.total),
            ("receiving pack", 40, Some(100))
        );
        assert!(shown("other").is_none());
        // A panicking fetch drops its guard too.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _guard = guard;
            panic!("fetch failed");
        }));
        assert!(panicked.is_err());
        assert!(shown("config").is_none());
    }

    #[test]
    fn oci_urls_are_checked_like_git_urls() {
        assert_eq!(
            check_oci_url(" oci://r.example.com/charts/ ").unwrap(),
            "oci://r.example.com/charts"
        );
        assert!(check_oci_url("https://r.example.com/charts").is_err());
        let e = check_oci_url("oci://bot:tok3n@r.example.com/charts").unwrap_err();
        assert!(e.to_string().contains("carries credentials"), "{e}");
    }
}
