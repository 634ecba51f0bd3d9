//! Helm chart repositories: an HTTP server with an `index.yaml` listing
//! every version of every chart and where its `.tgz` archive is.
//!
//! The hub reads the index on the repo's interval and keeps it as the
//! repo's refs (`chart/version` → digest, creation time, archive URL), so
//! that a new version shows up like a moved branch. An app's version range
//! resolves (Masterminds/semver rules, as Helm's) to one version, named in
//! the app's history as `VERSION@sha256:DIGEST` the way a Git app names a
//! commit. Its archive is downloaded when first rendered, checked against
//! the index's digest and cached by that digest: a tampered archive is
//! refused, and a cached one is never fetched again.
//!
//! An OCI registry (`oci://host/path`) has no index: the tags of the charts
//! apps use are listed and each new tag's manifest read for the digest of
//! its chart layer, giving refs of the same shape ([`fetch_oci`]).

pub mod deps;
mod token_auth;

use reqwest::Url;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use switchyard_helm::semver_compat;

/// Largest `index.yaml` read (the biggest public indexes are a few tens of MiB).
pub const MAX_INDEX_BYTES: u64 = 64 << 20;
/// Largest chart archive downloaded (Helm's limit on an unpacked chart; the
/// render worker applies Helm's own limits to what is inside).
pub const MAX_CHART_BYTES: u64 = 100 << 20;
/// Whole-request timeout of every download.
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Error reading a chart repository.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{url}: {detail}")]
    Http { url: String, detail: String },
    #[error("{url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: larger than {limit} bytes; refusing it")]
    TooLarge { url: String, limit: u64 },
    #[error("ca file {path}: {detail}")]
    CaFile { path: PathBuf, detail: String },
    #[error("index.yaml: {0}")]
    Index(String),
    #[error("chart {0} is not in the repository's index.yaml")]
    NoChart(String),
    #[error("no version of chart {chart} matches {range:?}; index.yaml has {available}")]
    NoMatch {
        chart: String,
        range: String,
        available: String,
    },
    #[error("chart version range {range:?}: {detail}")]
    BadRange { range: String, detail: String },
    #[error("chart {chart} {version} is no longer in the repository's index.yaml")]
    Gone { chart: String, version: String },
    #[error(
        "chart {chart} {version}: the archive downloaded from {url} has sha256 {actual}, \
         but index.yaml says {expected}; refusing it"
    )]
    Digest {
        chart: String,
        version: String,
        url: String,
        expected: String,
        actual: String,
    },
    #[error("chart cache {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a chart repository is and how to reach it.
#[derive(Debug, Clone)]
pub struct Source {
    pub url: String,
    /// User name and password, sent only to the repository's own host.
    pub credentials: Option<(String, String)>,
    pub ca_file: Option<PathBuf>,
    /// An OCI registry spoken to over http:// instead of https://.
    pub plain_http: bool,
}

impl Source {
    /// The origin an `oci://` URL is reached at (the URL itself otherwise):
    /// where credentials may be sent.
    fn http_url(&self) -> String {
        self.url.replacen("oci://", self.scheme(), 1)
    }

    fn scheme(&self) -> &'static str {
        if self.plain_http {
            "http://"
        } else {
            "https://"
        }
    }
}

/// One version of a chart, as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub version: String,
    /// Hex sha256 of the archive.
    pub digest: String,
    /// When the version was published (RFC 3339), if the index says.
    pub created: Option<String>,
    /// Absolute URL of the archive.
    pub url: String,
}

impl Entry {
    /// How the app's history names this version.
    pub fn id(&self) -> String {
        format!("{}@sha256:{}", self.version, self.digest)
    }

    /// Seconds since the epoch of `created` (0 when unknown): what `now`
    /// returns in templates, so a version renders the same every time.
    pub fn created_unix(&self) -> u64 {
        self.created.as_deref().map_or(0, created_unix)
    }
}

/// Seconds since the epoch of an index's `created` time. Offsets other than
/// `Z` are ignored (an hour's error at most matters to no one here).
fn created_unix(created: &str) -> u64 {
    let Some(head) = created.get(..19) else {
        return 0;
    };
    humantime::parse_rfc3339_weak(head)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// `VERSION@sha256:DIGEST` → (version, digest).
pub fn split_id(id: &str) -> Option<(&str, &str)> {
    let (version, digest) = id.split_once("@sha256:")?;
    Some((version, digest))
}

#[derive(serde::Deserialize)]
struct Index {
    #[serde(default)]
    entries: BTreeMap<String, Vec<IndexEntry>>,
}

#[derive(serde::Deserialize)]
struct IndexEntry {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    urls: Vec<String>,
}

/// The index as refs: `chart/version` → `digest created url`. Versions
/// without a digest or a URL are left out (they could not be verified or
/// fetched), as are versions that are not semver.
pub fn parse_index(text: &str, base: &str) -> Result<BTreeMap<String, String>> {
    let index: Index = serde_saphyr::from_str(text).map_err(|e| Error::Index(e.to_string()))?;
    let base = base_url(base)?;
    let mut refs = BTreeMap::new();
    for (chart, versions) in index.entries {
        if chart.is_empty() || chart.contains(['/', ' ']) {
            continue;
        }
        for v in versions {
            let (Some(version), Some(digest), Some(url)) = (v.version, v.digest, v.urls.first())
            else {
                continue;
            };
            let digest = digest.trim_start_matches("sha256:").to_ascii_lowercase();
            let hex_ok = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex_ok || semver_compat::compare_versions(&version, &version).is_err() {
                continue;
            }
            let Ok(url) = base.join(url) else { continue };
            let created = v
                .created
                .filter(|c| !c.is_empty() && !c.contains(' '))
                .unwrap_or_else(|| "-".into());
            refs.insert(
                format!("{chart}/{version}"),
                format!("{digest} {created} {url}"),
            );
        }
    }
    Ok(refs)
}

fn base_url(url: &str) -> Result<Url> {
    let with_slash = if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    };
    Url::parse(&with_slash).map_err(|e| Error::Http {
        url: url.to_owned(),
        detail: e.to_string(),
    })
}

/// Every listed version of `chart`.
pub fn entries(refs: &BTreeMap<String, String>, chart: &str) -> Vec<Entry> {
    let prefix = format!("{chart}/");
    refs.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter_map(|(k, v)| {
            let mut parts = v.splitn(3, ' ');
            let (digest, created, url) = (parts.next()?, parts.next()?, parts.next()?);
            Some(Entry {
                version: k[prefix.len()..].to_owned(),
                digest: digest.to_owned(),
                created: (created != "-").then(|| created.to_owned()),
                url: url.to_owned(),
            })
        })
        .collect()
}

/// The version of `chart` an app deploys: the highest that `range` allows
/// (Masterminds/semver constraints, as Helm: `^6.0`, `~6.1`, `>=6, <7`,
/// `6.1.0` exactly; prereleases only when the range names one), or without
/// a range the highest stable version.
pub fn resolve(refs: &BTreeMap<String, String>, chart: &str, range: Option<&str>) -> Result<Entry> {
    let all = entries(refs, chart);
    if all.is_empty() {
        return Err(Error::NoChart(chart.to_owned()));
    }
    let range = range.map(str::trim).filter(|r| !r.is_empty());
    if let Some(range) = range {
        // A range that matches nothing must still be a range.
        semver_compat::compare(range, "0.0.0").map_err(|detail| Error::BadRange {
            range: range.to_owned(),
            detail,
        })?;
    }
    let allowed = |e: &Entry| match range {
        Some(range) => semver_compat::compare(range, &e.version).unwrap_or(false),
        None => semver_compat::is_prerelease(&e.version) == Ok(false),
    };
    let best = all.iter().filter(|e| allowed(e)).max_by(|a, b| {
        semver_compat::compare_versions(&a.version, &b.version).unwrap_or(std::cmp::Ordering::Equal)
    });
    match best {
        Some(e) => Ok(e.clone()),
        None => {
            let mut versions: Vec<&Entry> = all.iter().collect();
            versions.sort_by(|a, b| {
                semver_compat::compare_versions(&a.version, &b.version)
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            let available = versions
                .iter()
                .map(|e| e.version.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            Err(Error::NoMatch {
                chart: chart.to_owned(),
                range: range.unwrap_or("latest stable").to_owned(),
                available,
            })
        }
    }
}

/// The entry a history id names, if the index still lists it.
pub fn find(refs: &BTreeMap<String, String>, chart: &str, id: &str) -> Option<Entry> {
    let (version, digest) = split_id(id)?;
    entries(refs, chart)
        .into_iter()
        .find(|e| e.version == version && e.digest == digest)
}

fn client(source: &Source) -> Result<reqwest::blocking::Client> {
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5));
    if let Some(path) = &source.ca_file {
        let ca_err = |detail: String| Error::CaFile {
            path: path.clone(),
            detail,
        };
        let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_err("no PEM certificate in it".into()));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| Error::Http {
        url: source.url.clone(),
        detail: e.to_string(),
    })
}

/// GET `url`, at most `limit` bytes. Credentials go only to the repo's
/// own scheme, host and port: an index may point anywhere.
fn get(
    client: &reqwest::blocking::Client,
    source: &Source,
    url: &str,
    limit: u64,
) -> Result<Vec<u8>> {
    get_with(client, source, url, limit, None)
}

/// [`get`] with an `Accept` header.
fn get_with(
    client: &reqwest::blocking::Client,
    source: &Source,
    url: &str,
    limit: u64,
    accept: Option<&str>,
) -> Result<Vec<u8>> {
    let http = |e: &dyn std::fmt::Display| Error::Http {
        url: url.to_owned(),
        detail: error_chain(e),
    };
    let mut request = client.get(url);
    if let Some(accept) = accept {
        request = request.header(reqwest::header::ACCEPT, accept);
    }
    // Without credentials: a bearer token replaces them.
    let retry = request.try_clone();
    if let (Some((user, password)), Ok(target), Ok(repo)) = (
        &source.credentials,
        Url::parse(url),
        Url::parse(&source.http_url()),
    ) && target.origin() == repo.origin()
    {
        request = request.basic_auth(user, Some(password));
    }
    let send = |request: reqwest::blocking::RequestBuilder| {
        request.send().map_err(|e| Error::Http {
            url: url.to_owned(),
            detail: plain_http_hint(url, reqwest_detail(&e)),
        })
    };
    let mut response = send(request)?;
    // A registry's token auth (Docker Hub, ghcr.io, distribution's `auth:
    // token`): a token from the realm the challenge names, then the same
    // request again with it.
    if response.status() == reqwest::StatusCode::UNAUTHORIZED
        && let Some(challenge) = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(token_auth::Challenge::parse)
        && let Some(retry) = retry
    {
        let token =
            token_auth::token(client, source, &challenge).map_err(|detail| Error::Http {
                url: url.to_owned(),
                detail: format!("token from {}: {detail}", challenge.realm),
            })?;
        response = send(retry.bearer_auth(token))?;
    }
    let status = response.status();
    if !status.is_success() {
        return Err(Error::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(Error::TooLarge {
            url: url.to_owned(),
            limit,
        });
    }
    let mut body = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| http(&e))?;
    if body.len() as u64 > limit {
        return Err(Error::TooLarge {
            url: url.to_owned(),
            limit,
        });
    }
    Ok(body)
}

fn error_chain(e: &dyn std::fmt::Display) -> String {
    e.to_string()
}

/// `detail` with a hint when a TLS handshake got something that is not
/// TLS: most often a server speaking plain HTTP.
fn plain_http_hint(url: &str, detail: String) -> String {
    if url.starts_with("https://") && detail.contains("InvalidContentType") {
        format!(
            "{detail} (the server answered in plain HTTP, not TLS: for an OCI registry \
             add the repo with --plain-http, for a Helm repository use an http:// URL)"
        )
    } else {
        detail
    }
}

/// A reqwest error with its causes (the TLS reason, the refused connection).
fn reqwest_detail(e: &reqwest::Error) -> String {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

/// Largest OCI manifest or tag list read.
const MAX_OCI_DOCUMENT: u64 = 4 << 20;
/// Most tags of one chart looked at.
const MAX_OCI_TAGS: usize = 10_000;
/// Media type of a Helm chart's layer in an OCI manifest.
const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// `oci://host/path` → (`https://host`, `path`), or `http://host` when
/// the registry is spoken to over plain HTTP.
fn oci_parts(url: &str, plain_http: bool) -> Result<(String, String)> {
    let rest = url.strip_prefix("oci://").ok_or_else(|| Error::Http {
        url: url.to_owned(),
        detail: "not an oci:// URL".into(),
    })?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let scheme = if plain_http { "http" } else { "https" };
    Ok((
        format!("{scheme}://{host}"),
        path.trim_matches('/').to_owned(),
    ))
}

#[derive(serde::Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(serde::Deserialize)]
struct Layer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
}

/// The versions of `charts` in an OCI registry, as refs like an index's:
/// each semver tag (`+` is written `_` in tags, as Helm does) with the
/// digest and blob URL of its chart layer. Tags already in `known` are not
/// asked for again (the archive's digest is checked when it is pulled).
pub fn fetch_oci(
    source: &Source,
    charts: &[String],
    known: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let client = client(source)?;
    let (base, path) = oci_parts(&source.url, source.plain_http)?;
    let http_source = Source {
        url: base.clone(),
        ..source.clone()
    };
    let mut refs = BTreeMap::new();
    for chart in charts {
        let repository = if path.is_empty() {
            chart.clone()
        } else {
            format!("{path}/{chart}")
        };
        let url = format!("{base}/v2/{repository}/tags/list");
        let body = get(&client, &http_source, &url, MAX_OCI_DOCUMENT)?;
        let list: TagList = serde_json::from_slice(&body).map_err(|e| Error::Http {
            url: url.clone(),
            detail: format!("not a tag list: {e}"),
        })?;
        for tag in list.tags.unwrap_or_default().into_iter().take(MAX_OCI_TAGS) {
            let version = tag.replace('_', "+");
            if semver_compat::compare_versions(&version, &version).is_err() {
                continue;
            }
            let key = format!("{chart}/{version}");
            if let Some(v) = known.get(&key) {
                refs.insert(key, v.clone());
                continue;
            }
            let url = format!("{base}/v2/{repository}/manifests/{tag}");
            let body = get_with(
                &client,
                &http_source,
                &url,
                MAX_OCI_DOCUMENT,
                Some("application/vnd.oci.image.manifest.v1+json"),
            )?;
            let manifest: Manifest = serde_json::from_slice(&body).map_err(|e| Error::Http {
                url: url.clone(),
                detail: format!("not an OCI manifest: {e}"),
            })?;
            let Some(layer) = manifest
                .layers
                .iter()
                .find(|l| l.media_type == HELM_CHART_LAYER)
            else {
                continue;
            };
            let Some(hex) = layer.digest.strip_prefix("sha256:") else {
                continue;
            };
            refs.insert(
                key,
                format!("{hex} - {base}/v2/{repository}/blobs/sha256:{hex}"),
            );
        }
    }
    Ok(refs)
}

/// Download the repository's index.yaml and read it as refs.
pub fn fetch_index(source: &Source) -> Result<BTreeMap<String, String>> {
    let client = client(source)?;
    let url = base_url(&source.url)?
        .join("index.yaml")
        .map_err(|e| Error::Index(e.to_string()))?;
    let body = get(&client, source, url.as_str(), MAX_INDEX_BYTES)?;
    let text = String::from_utf8(body).map_err(|_| Error::Index("not UTF-8".into()))?;
    parse_index(&text, &source.url)
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The archive of `entry`: from the cache when there, else downloaded,
/// verified against the index's digest and cached.
pub fn archive(cache: &Path, source: &Source, chart: &str, entry: &Entry) -> Result<Vec<u8>> {
    let path = cache.join(format!("{}.tgz", entry.digest));
    let cache_err = |source| Error::Cache {
        path: path.clone(),
        source,
    };
    if let Ok(data) = std::fs::read(&path) {
        // Checked again: a damaged cache file is fetched anew, not rendered.
        if sha256_hex(&data) == entry.digest {
            return Ok(data);
        }
    }
    let client = client(source)?;
    let data = get(&client, source, &entry.url, MAX_CHART_BYTES)?;
    let actual = sha256_hex(&data);
    if actual != entry.digest {
        return Err(Error::Digest {
            chart: chart.to_owned(),
            version: entry.version.clone(),
            url: entry.url.clone(),
            expected: entry.digest.clone(),
            actual,
        });
    }
    std::fs::create_dir_all(cache).map_err(cache_err)?;
    let mut file = tempfile::NamedTempFile::new_in(cache).map_err(cache_err)?;
    std::io::Write::write_all(&mut file, &data).map_err(cache_err)?;
    file.persist(&path).map_err(|e| cache_err(e.error))?;
    Ok(data)
}

/// The archive of `entry` from the cache alone (a rollback to a version
/// the index no longer lists).
pub fn cached_archive(cache: &Path, digest: &str) -> Option<Vec<u8>> {
    let data = std::fs::read(cache.join(format!("{digest}.tgz"))).ok()?;
    (sha256_hex(&data) == digest).then_some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn index() -> BTreeMap<String, String> {
        let entries = [
            format!(
                "{{version: 6.0.0, digest: {D1}, urls: [podinfo-6.0.0.tgz], created: '2024-01-02T03:04:05.123Z'}}"
            ),
            format!(
                "{{version: 6.1.2, digest: {D2}, urls: ['https://cdn.example.com/p-6.1.2.tgz']}}"
            ),
            format!("{{version: 6.2.0-rc.1, digest: {D1}, urls: [x.tgz]}}"),
            format!("{{version: 7.0.0, digest: 'sha256:{D2}', urls: [y.tgz]}}"),
            "{version: 5.0.0, urls: [no-digest.tgz]}".to_owned(),
            format!("{{version: not-semver, digest: {D1}, urls: [z.tgz]}}"),
        ];
        let mut text = "apiVersion: v1\nentries:\n  podinfo:\n".to_owned();
        for e in entries {
            text.push_str(&format!("  - {e}\n"));
        }
        parse_index(&text, "https://charts.example.com/stable").unwrap()
    }

    #[test]
    fn the_index_becomes_refs_with_absolute_urls() {
        let all = entries(&index(), "podinfo");
        let versions: Vec<&str> = all.iter().map(|e| e.version.as_str()).collect();
        assert_eq!(versions, ["6.0.0", "6.1.2", "6.2.0-rc.1", "7.0.0"]);
        assert_eq!(
            all[0].url,
            "https://charts.example.com/stable/podinfo-6.0.0.tgz"
        );
        assert_eq!(all[1].url, "https://cdn.example.com/p-6.1.2.tgz");
        assert_eq!(all[0].created_unix(), 1_704_164_645);
        assert_eq!(all[1].created_unix(), 0);
    }

    #[test]
    fn ranges_resolve_as_helm_resolves_them() {
        let refs = index();
        let v = |range: Option<&str>| resolve(&refs, "podinfo", range).map(|e| e.version);
        assert_eq!(v(None).unwrap(), "7.0.0");
        assert_eq!(v(Some("^6.0")).unwrap(), "6.1.2");
        assert_eq!(v(Some("~6.0")).unwrap(), "6.0.0");
        assert_eq!(v(Some(">=6.0.0, <7")).unwrap(), "6.1.2");
        assert_eq!(v(Some("6.0.0")).unwrap(), "6.0.0");
        assert_eq!(v(Some("6.x")).unwrap(), "6.1.2");
        // Prereleases only when the range asks for one.
        assert_eq!(v(Some("~6.2.0-0")).unwrap(), "6.2.0-rc.1");
        assert_eq!(v(Some("6.2.0-rc.1")).unwrap(), "6.2.0-rc.1");
        // Masterminds checks each term: `<7` names no prerelease, so it
        // turns every prerelease away, as in Helm.
        assert!(matches!(
            v(Some(">=6.2.0-0, <7")),
            Err(Error::NoMatch { .. })
        ));
        match v(Some("^8")) {
            Err(Error::NoMatch { available, .. }) => {
                assert_eq!(available, "6.0.0, 6.1.2, 6.2.0-rc.1, 7.0.0")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(v(Some("^^")), Err(Error::BadRange { .. })));
        assert!(matches!(
            resolve(&refs, "nginx", None),
            Err(Error::NoChart(_))
        ));
    }

    #[test]
    fn oci_urls_name_the_registry_and_the_charts_namespace() {
        assert_eq!(
            oci_parts("oci://registry.example.com:5000/org/charts", false).unwrap(),
            (
                "https://registry.example.com:5000".to_owned(),
                "org/charts".to_owned()
            )
        );
        assert_eq!(
            oci_parts("oci://registry.example.com", false).unwrap(),
            ("https://registry.example.com".to_owned(), String::new())
        );
        assert_eq!(
            oci_parts("oci://127.0.0.1:5000/charts", true).unwrap(),
            ("http://127.0.0.1:5000".to_owned(), "charts".to_owned())
        );
        assert!(oci_parts("https://registry.example.com", false).is_err());
    }

    #[test]
    fn a_tls_handshake_answered_in_plain_http_suggests_plain_http() {
        let tls = "client error (Connect): received corrupt message of type InvalidContentType";
        assert!(plain_http_hint("https://r:5000/v2/", tls.into()).contains("--plain-http"));
        assert_eq!(plain_http_hint("http://r:5000/v2/", tls.into()), tls);
        assert_eq!(
            plain_http_hint("https://r/v2/", "connection refused".into()),
            "connection refused"
        );
    }

    #[test]
    fn ids_name_version_and_digest() {
        let e = resolve(&index(), "podinfo", Some("6.0.0")).unwrap();
        assert_eq!(e.id(), format!("6.0.0@sha256:{D1}"));
        assert_eq!(split_id(&e.id()), Some(("6.0.0", D1)));
        assert_eq!(find(&index(), "podinfo", &e.id()), Some(e));
        assert_eq!(
            find(&index(), "podinfo", &format!("6.0.0@sha256:{D2}")),
            None
        );
    }
}
