//! Charts from a Helm chart repository end to end, with the real binaries
//! and a real server: lighttpd serving index.yaml and chart archives over
//! HTTPS (a private CA) behind basic auth. A version range resolves to the
//! newest matching version, which a dry-run agent receives and `app
//! manifests` prints; a newly published version is recorded in the app's
//! history and deployed (automatic) or waits for `app sync` (manual);
//! rollback goes back to the earlier version; a tampered archive (digest
//! mismatch) is refused with a clear error and deploys nothing new; a range
//! nothing matches is a clear error. Dependencies a chart does not vendor
//! are fetched from HTTPS, OCI and file:// repositories; a registry with
//! token auth (a test token server, real JWTs) is pulled from.

use serde_json::Value;
use switchyard_tests::chart_server::ChartRepoServer;
use switchyard_tests::fleet::{SOON, TestHub};
use switchyard_tests::process::wait_until;

const CONFIG_MAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-info
data:
  version: {{ .Chart.Version | quote }}
  greeting: {{ .Values.greeting | quote }}
"#;

const VALUES: &str = "greeting: hello\n";

fn publish(server: &mut ChartRepoServer, version: &str) -> String {
    server.publish(
        "podinfo",
        version,
        &[("values.yaml", VALUES), ("templates/cm.yaml", CONFIG_MAP)],
    )
}

/// The ConfigMap `app manifests` prints for `app`.
fn config_map(hub: &TestHub, app: &str) -> Value {
    let out = hub.cli(&["app", "manifests", app, "-o", "json"]);
    assert!(out.success(), "app manifests {app}: {}", out.stderr);
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "ConfigMap")
        .unwrap_or_else(|| panic!("no ConfigMap in {list}"))
        .clone()
}

fn version_of(id: &Value) -> String {
    id.as_str()
        .and_then(|s| s.split_once("@sha256:"))
        .map(|(v, _)| v.to_owned())
        .unwrap_or_default()
}

fn history(hub: &TestHub, app: &str) -> Vec<Value> {
    hub.cli_json(&["app", "history", app])
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn charts_from_a_chart_repository_resolve_deploy_wait_roll_back_and_refuse_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ChartRepoServer::start("robot", "s3cret");
    let digest_600 = publish(&mut server, "6.0.0");
    publish(&mut server, "5.9.0");
    publish(&mut server, "7.0.0-rc.1");
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();

    let hub = TestHub::start(dir.path(), &[]);
    // Credentials in the URL are refused, as for Git repos.
    let refused = hub.cli(&[
        "repo",
        "add",
        "charts",
        &server.url().replace("https://", "https://robot:s3cret@"),
        "--type",
        "helm",
    ]);
    assert!(!refused.success());
    assert!(
        refused.stderr.contains("carries credentials"),
        "{}",
        refused.stderr
    );
    hub.cli_ok(&[
        "repo",
        "add",
        "charts",
        &server.url(),
        "--type",
        "helm",
        "--username",
        "robot",
        "--password-file",
        password.to_str().unwrap(),
        "--ca-file",
        server.ca_pem_path().to_str().unwrap(),
        "--interval",
        "1s",
    ]);
    assert!(
        wait_until(SOON, || {
            !hub.cli_json(&["repo", "show", "charts"])["last_success"].is_null()
        }),
        "index never fetched: {}\n{}",
        hub.cli_json(&["repo", "show", "charts"]),
        server.logs()
    );
    let repo = hub.cli_json(&["repo", "show", "charts"]);
    assert_eq!(repo["kind"], "helm");
    assert_eq!(repo["refs"], 3, "{repo}");
    assert!(repo["error"].is_null(), "{repo}");

    // Wrong credentials and an unknown CA are clear errors in `repo show`.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "guess\n").unwrap();
    let ca = server.ca_pem_path();
    for (name, extra) in [
        (
            "badauth",
            vec![
                "--username",
                "robot",
                "--password-file",
                wrong.to_str().unwrap(),
                "--ca-file",
                ca.to_str().unwrap(),
            ],
        ),
        ("noca", vec![]),
    ] {
        let url = server.url();
        let mut args = vec!["repo", "add", name, &url, "--type", "helm"];
        args.extend(extra);
        hub.cli_ok(&args);
    }
    let error = |name: &str| {
        hub.cli_json(&["repo", "show", name])["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        wait_until(SOON, || error("badauth")
            .contains("index.yaml: the server answered HTTP 401")),
        "{}",
        error("badauth")
    );
    assert!(
        wait_until(SOON, || error("noca").contains("certificate")),
        "{}",
        error("noca")
    );
    hub.cli_ok(&["repo", "remove", "badauth"]);
    hub.cli_ok(&["repo", "remove", "noca"]);

    let mut agent = hub.connect_agent(dir.path(), "edge", &[]);

    // A range resolves to the newest version it allows.
    hub.cli_ok(&[
        "app",
        "create",
        "web",
        "--repo",
        "charts",
        "--chart",
        "podinfo",
        "--chart-version",
        "^6.0",
        "--set",
        "greeting=hi",
        "--release-name",
        "front",
    ]);
    let app = hub.cli_json(&["app", "show", "web"]);
    assert_eq!(app["chart"], "podinfo");
    assert_eq!(app["chart_version"], "^6.0");
    assert_eq!(
        app["latest"].as_str().unwrap(),
        format!("6.0.0@sha256:{digest_600}")
    );
    assert!(app["errors"].as_object().unwrap().is_empty(), "{app}");
    let cm = config_map(&hub, "web");
    assert_eq!(cm["metadata"]["name"], "front-info");
    assert_eq!(cm["data"]["version"], "6.0.0");
    assert_eq!(cm["data"]["greeting"], "hi");
    agent.wait_plan("first version", |p| {
        p.contains("app web at 6.0.0") && p.contains("would apply ConfigMap")
    });
    let shown = hub.cli_ok(&["app", "show", "web", "-o", "table"]);
    assert!(shown.contains("^6.0"), "{shown}");
    assert!(
        shown.contains(&format!("6.0.0 (sha256:{digest_600})")),
        "{shown}"
    );

    // Without a range: the newest stable version (not 7.0.0-rc.1).
    hub.cli_ok(&[
        "app", "create", "stable", "--repo", "charts", "--chart", "podinfo",
    ]);
    assert_eq!(
        version_of(&hub.cli_json(&["app", "show", "stable"])["latest"]),
        "6.0.0"
    );
    // A range nothing matches is a clear error.
    let none = hub.cli(&[
        "app",
        "create",
        "none",
        "--repo",
        "charts",
        "--chart",
        "podinfo",
        "--chart-version",
        "^9",
    ]);
    assert!(!none.success());
    assert!(
        none.stderr.contains(
            "no version of chart podinfo matches \"^9\"; index.yaml has 5.9.0, 6.0.0, 7.0.0-rc.1"
        ),
        "{}",
        none.stderr
    );
    hub.cli_ok(&["app", "delete", "none"]);
    hub.cli_ok(&["app", "delete", "stable"]);

    // A manual app waits for a sync.
    hub.cli_ok(&[
        "app",
        "create",
        "guarded",
        "--repo",
        "charts",
        "--chart",
        "podinfo",
        "--chart-version",
        "~6.0",
        "--manual",
    ]);
    let guarded = hub.cli_json(&["app", "show", "guarded"]);
    assert!(guarded["deployed"].is_null(), "{guarded}");
    assert_eq!(version_of(&guarded["pending"]), "6.0.0");
    hub.cli_ok(&["app", "sync", "guarded"]);
    agent.wait_plan("synced manual app", |p| p.contains("app guarded at 6.0.0"));

    // A new version in range: recorded and deployed (automatic), pending
    // (manual).
    let digest_610 = publish(&mut server, "6.0.1");
    assert!(
        wait_until(SOON, || version_of(
            &hub.cli_json(&["app", "show", "web"])["deployed"]
        ) == "6.0.1"),
        "6.0.1 never deployed: {}",
        hub.cli_json(&["app", "show", "web"])
    );
    agent.wait_plan("new version", |p| {
        p.contains("app web at 6.0.1") && p.contains("app guarded at 6.0.0")
    });
    assert_eq!(config_map(&hub, "web")["data"]["version"], "6.0.1");
    let events: Vec<(String, String)> = history(&hub, "web")
        .iter()
        .map(|r| {
            (
                r["commit"].as_str().unwrap().to_owned(),
                r["event"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        events.contains(&(format!("6.0.1@sha256:{digest_610}"), "new-commit".into())),
        "{events:?}"
    );
    let guarded = hub.cli_json(&["app", "show", "guarded"]);
    assert_eq!(version_of(&guarded["deployed"]), "6.0.0", "{guarded}");
    assert_eq!(version_of(&guarded["pending"]), "6.0.1", "{guarded}");
    hub.cli_ok(&["app", "sync", "guarded"]);
    agent.wait_plan("second sync", |p| p.contains("app guarded at 6.0.1"));
    // `sync --revision` takes a listed version the range allows, and
    // refuses one it does not.
    hub.cli_ok(&["app", "sync", "guarded", "--revision", "6.0.0"]);
    agent.wait_plan("sync to a version", |p| p.contains("app guarded at 6.0.0"));
    let outside = hub.cli(&["app", "sync", "guarded", "--revision", "5.9.0"]);
    assert!(!outside.success());
    assert!(
        outside.stderr.contains("is not in the history of ~6.0"),
        "{}",
        outside.stderr
    );
    hub.cli_ok(&["app", "sync", "guarded"]);
    agent.wait_plan("back to the latest", |p| p.contains("app guarded at 6.0.1"));

    // Rollback to the earlier version, by its version.
    hub.cli_ok(&["app", "rollback", "web", "--to", "6.0.0"]);
    agent.wait_plan("rollback", |p| p.contains("app web at 6.0.0"));
    let web = hub.cli_json(&["app", "show", "web"]);
    assert_eq!(web["pinned"], true, "{web}");
    assert_eq!(config_map(&hub, "web")["data"]["version"], "6.0.0");
    hub.cli_ok(&["app", "sync", "web"]);
    agent.wait_plan("resumed", |p| p.contains("app web at 6.0.1"));

    // A tampered archive: its digest is not the index's. Refused with a
    // clear error; the clusters keep 6.0.1.
    let genuine = server.pack(
        "podinfo",
        "6.1.0",
        &[("values.yaml", VALUES), ("templates/cm.yaml", CONFIG_MAP)],
    );
    let tampered = server.pack(
        "podinfo",
        "6.1.0",
        &[
            ("values.yaml", "greeting: pwned\n"),
            ("templates/cm.yaml", CONFIG_MAP),
        ],
    );
    server.publish_archive("podinfo", "6.1.0", &genuine, &tampered);
    let refused = |hub: &TestHub| {
        let web = hub.cli_json(&["app", "show", "web"]);
        web["errors"]["*"].as_str().unwrap_or_default().to_owned()
    };
    assert!(
        wait_until(SOON, || refused(&hub).contains("but index.yaml says")),
        "tampered archive not refused: {}",
        hub.cli_json(&["app", "show", "web"])
    );
    let error = refused(&hub);
    assert!(
        error.contains("render of app web at chart version 6.1.0")
            && error.contains("chart podinfo 6.1.0: the archive downloaded from")
            && error.contains("refusing it"),
        "{error}"
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    let plan = agent.latest_plan();
    assert!(plan.contains("app web at 6.0.1"), "{plan}");
    assert!(!plan.contains("6.1.0"), "{plan}");
    assert_eq!(config_map(&hub, "guarded")["data"]["greeting"], "hello");

    // apply -f and export carry the repo's type and the app's chart.
    let exported = hub.cli_ok(&["export"]);
    assert!(
        exported.contains("type: helm")
            && exported.contains("chart: podinfo")
            && exported.contains("chartVersion: ~6.0"),
        "{exported}"
    );
    let doc = dir.path().join("pinned.yaml");
    std::fs::write(
        &doc,
        "apiVersion: switchyard.dev/v1\nkind: App\nmetadata:\n  name: exact\n\
         spec:\n  repo: charts\n  chart: podinfo\n  chartVersion: 5.9.0\n",
    )
    .unwrap();
    hub.cli_ok(&["apply", "-f", doc.to_str().unwrap()]);
    let exact = hub.cli_json(&["app", "show", "exact"]);
    assert_eq!(version_of(&exact["latest"]), "5.9.0", "{exact}");
    assert_eq!(exact["renderer"], "helm");
    agent.wait_plan("applied app", |p| p.contains("app exact at 5.9.0"));
}

/// Debian's `docker-registry` (the CNCF distribution registry) on loopback
/// over HTTPS with a private CA (or plain HTTP); killed on drop.
struct OciRegistry {
    _process: switchyard_tests::process::Process,
    port: u16,
    dir: tempfile::TempDir,
    /// With token auth, what the test's own pushes present.
    push_token: Option<String>,
    /// Served over plain HTTP.
    plain: bool,
}

impl OciRegistry {
    fn start() -> OciRegistry {
        Self::start_with("", None)
    }

    /// Over plain HTTP (no `tls:` section).
    fn start_plain() -> OciRegistry {
        Self::start_as(true, "", None)
    }

    /// With `auth` added to its configuration (an `auth:` section), and
    /// `push_token` sent with the test's pushes.
    fn start_with(auth: &str, push_token: Option<String>) -> OciRegistry {
        Self::start_as(false, auth, push_token)
    }

    fn start_as(plain: bool, auth: &str, push_token: Option<String>) -> OciRegistry {
        let program = std::path::Path::new("/usr/bin/docker-registry");
        assert!(
            program.exists(),
            "docker-registry is not installed (Debian package docker-registry); run ./test"
        );
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        let ca = switchyard_certs::CertificateAuthority::load_or_create(&tls).unwrap();
        ca.load_or_issue_server_identity(&tls, &["127.0.0.1".to_owned()])
            .unwrap();
        for attempt in 0..5 {
            let port = switchyard_tests::git_server::free_port();
            let config = dir.path().join(format!("config-{attempt}.yml"));
            let tls_section = if plain {
                String::new()
            } else {
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    tls.join("server.pem").display(),
                    tls.join("server-key.pem").display(),
                )
            };
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                     http:\n  addr: 127.0.0.1:{port}\n{tls_section}{auth}",
                    dir.path().join("data").display(),
                ),
            )
            .unwrap();
            let mut process = switchyard_tests::process::Process::spawn(
                program,
                &["serve".to_owned(), config.display().to_string()],
                &[],
                dir.path(),
                &format!("registry-{attempt}"),
            );
            let up = wait_until(std::time::Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() || !process.is_running()
            });
            if up && process.is_running() {
                return OciRegistry {
                    _process: process,
                    port,
                    dir,
                    push_token,
                    plain,
                };
            }
            eprintln!(
                "docker-registry attempt {attempt}: {}",
                process.stderr_text()
            );
        }
        panic!("docker-registry did not start");
    }

    fn client(&self) -> reqwest::blocking::Client {
        let pem = std::fs::read(self.dir.path().join("tls").join("ca.pem")).unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.push_token {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
        reqwest::blocking::Client::builder()
            .default_headers(headers)
            .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap()
    }

    /// `http` or `https`.
    fn scheme(&self) -> &'static str {
        if self.plain { "http" } else { "https" }
    }

    fn ca_pem_path(&self) -> std::path::PathBuf {
        self.dir.path().join("tls").join("ca.pem")
    }

    /// Upload one blob (monolithically); its digest.
    fn blob(&self, client: &reqwest::blocking::Client, repository: &str, data: &[u8]) -> String {
        use sha2::Digest as _;
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)));
        let started = client
            .post(format!(
                "{}://127.0.0.1:{}/v2/{repository}/blobs/uploads/",
                self.scheme(),
                self.port
            ))
            .send()
            .unwrap();
        assert_eq!(started.status().as_u16(), 202, "{:?}", started.text());
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with('/') {
            format!("{}://127.0.0.1:{}{location}", self.scheme(), self.port)
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let done = client
            .put(format!("{location}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .unwrap();
        assert_eq!(done.status().as_u16(), 201, "{:?}", done.text());
        digest
    }

    /// Push a chart archive as Helm does: a config blob, the chart layer
    /// and an OCI manifest tagged with the version.
    fn push(&self, chart: &str, version: &str, archive: &[u8]) -> String {
        let client = self.client();
        let repository = format!("charts/{chart}");
        let config = format!(r#"{{"apiVersion":"v2","name":"{chart}","version":"{version}"}}"#);
        let config_digest = self.blob(&client, &repository, config.as_bytes());
        let layer_digest = self.blob(&client, &repository, archive);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.cncf.helm.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                "digest": layer_digest,
                "size": archive.len(),
            }],
        });
        let put = client
            .put(format!(
                "{}://127.0.0.1:{}/v2/{repository}/manifests/{version}",
                self.scheme(),
                self.port
            ))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.to_string())
            .send()
            .unwrap();
        assert_eq!(put.status().as_u16(), 201, "{:?}", put.text());
        layer_digest
    }
}

#[test]
fn charts_from_an_oci_registry_resolve_deploy_and_follow_new_tags() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let registry = OciRegistry::start();
    let files = [("values.yaml", VALUES), ("templates/cm.yaml", CONFIG_MAP)];
    let pack = |v: &str| switchyard_tests::chart_server::pack_chart("hello", v, &files);
    let first = registry.push("hello", "1.0.0", &pack("1.0.0"));
    registry.push("hello", "2.0.0", &pack("2.0.0"));

    let hub = TestHub::start(dir.path(), &[]);
    hub.cli_ok(&[
        "repo",
        "add",
        "registry",
        &format!("oci://127.0.0.1:{}/charts", registry.port),
        "--type",
        "oci",
        "--ca-file",
        registry.ca_pem_path().to_str().unwrap(),
        "--interval",
        "1s",
    ]);
    let mut agent = hub.connect_agent(dir.path(), "edge", &[]);
    let out = hub.cli(&[
        "app",
        "create",
        "hello",
        "--repo",
        "registry",
        "--chart",
        "hello",
        "--chart-version",
        "~1.0",
    ]);
    assert!(
        out.success() || out.stderr.contains("waiting for"),
        "{}",
        out.stderr
    );
    assert!(
        wait_until(SOON, || version_of(
            &hub.cli_json(&["app", "show", "hello"])["deployed"]
        ) == "1.0.0"),
        "never resolved: {}\n{}",
        hub.cli_json(&["app", "show", "hello"]),
        hub.cli_json(&["repo", "show", "registry"])
    );
    assert_eq!(
        hub.cli_json(&["app", "show", "hello"])["latest"],
        format!("1.0.0@{first}")
    );
    agent.wait_plan("from the registry", |p| {
        p.contains("app hello at 1.0.0") && p.contains("would apply ConfigMap")
    });
    assert_eq!(config_map(&hub, "hello")["data"]["version"], "1.0.0");

    // A new tag in range is deployed.
    registry.push("hello", "1.0.1", &pack("1.0.1"));
    agent.wait_plan("new tag", |p| p.contains("app hello at 1.0.1"));
    assert_eq!(config_map(&hub, "hello")["data"]["version"], "1.0.1");
}

/// A subchart's ConfigMap, named after the chart (its alias when it has
/// one) so that several subcharts' objects do not collide.
const SUB_CONFIG_MAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
data:
  version: {{ .Chart.Version | quote }}
  greeting: {{ .Values.greeting | default "none" | quote }}
"#;

/// The ConfigMaps of `app` for cluster c1, by name.
fn config_maps(hub: &TestHub, app: &str) -> std::collections::BTreeMap<String, Value> {
    let out = hub.cli(&["app", "manifests", app, "--cluster", "c1", "-o", "json"]);
    assert!(out.success(), "app manifests {app}: {}", out.stderr);
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "ConfigMap")
        .map(|o| {
            (
                o["metadata"]["name"].as_str().unwrap().to_owned(),
                o["data"].clone(),
            )
        })
        .collect()
}

#[test]
fn chart_dependencies_not_vendored_are_fetched_from_https_oci_and_file_repositories() {
    use switchyard_tests::git_server::{GitDaemon, GitRepoBuilder};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut server = ChartRepoServer::start("robot", "s3cret");
    let sub = [("templates/cm.yaml", SUB_CONFIG_MAP)];
    for v in ["1.0.0", "1.1.0", "2.0.0"] {
        server.publish("redis", v, &sub);
    }
    let registry = OciRegistry::start();
    for v in ["2.0.0", "2.0.5", "3.0.0"] {
        let archive = switchyard_tests::chart_server::pack_chart("common", v, &sub);
        registry.push("common", v, &archive);
    }
    let oci_url = format!("oci://127.0.0.1:{}/charts", registry.port);
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();

    // A Git chart: redis from the HTTPS repo (aliased, with a condition,
    // pinned by Chart.lock below the range's newest), common from the OCI
    // registry (a range), lib from a directory beside it (file://).
    let chart_yaml = format!(
        "apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n\
         - name: redis\n  version: ^1.0\n  repository: {https}/\n  alias: cache\n  condition: cache.enabled\n\
         - name: common\n  version: ~2.0\n  repository: {oci_url}\n\
         - name: lib\n  version: 0.1.0\n  repository: file://../lib\n",
        https = server.url(),
    );
    let chart_lock = format!(
        "dependencies:\n- name: redis\n  repository: {https}\n  version: 1.0.0\n\
         - name: common\n  repository: {oci_url}\n  version: 2.0.0\n\
         - name: lib\n  repository: file://../lib\n  version: 0.1.0\n\
         digest: sha256:0000\ngenerated: \"2026-01-01T00:00:00Z\"\n",
        https = server.url(),
    );
    let source = GitRepoBuilder::new();
    source.write("charts/web/Chart.yaml", &chart_yaml);
    source.write(
        "charts/web/values.yaml",
        "cache:\n  enabled: true\n  greeting: from-parent\n",
    );
    source.write("charts/web/Chart.lock", &chart_lock);
    source.write("charts/web/templates/cm.yaml", SUB_CONFIG_MAP);
    source.write(
        "charts/lib/Chart.yaml",
        "apiVersion: v2\nname: lib\nversion: 0.1.0\n",
    );
    source.write("charts/lib/templates/cm.yaml", SUB_CONFIG_MAP);
    let first = source.commit("web with three dependencies, none vendored");
    let served = dir.path().join("served");
    source.publish(&served, "fleet");
    let daemon = GitDaemon::start(&served);

    let hub = TestHub::start(dir.path(), &[]);
    hub.cli_ok(&[
        "repo",
        "add",
        "charts",
        &server.url(),
        "--type",
        "helm",
        "--username",
        "robot",
        "--password-file",
        password.to_str().unwrap(),
        "--ca-file",
        server.ca_pem_path().to_str().unwrap(),
    ]);
    hub.cli_ok(&[
        "repo",
        "add",
        "registry",
        &oci_url,
        "--type",
        "oci",
        "--ca-file",
        registry.ca_pem_path().to_str().unwrap(),
    ]);
    hub.cli_ok(&[
        "repo",
        "add",
        "fleet",
        &daemon.url("fleet.git"),
        "--interval",
        "1s",
    ]);
    assert!(
        hub.repo_reaches("fleet", &first),
        "first fetch never happened"
    );
    hub.add_cluster("c1", &[]);
    hub.cli_ok(&[
        "app",
        "create",
        "web",
        "--repo",
        "fleet",
        "--path",
        "charts/web",
        "--renderer",
        "helm",
    ]);
    assert!(
        wait_until(SOON, || hub.cli_json(&["app", "show", "web"])["assigned"]
            == 1),
        "never assigned: {}\n{}",
        hub.cli_json(&["app", "show", "web"]),
        server.logs()
    );
    let maps = config_maps(&hub, "web");
    // Chart.lock's 1.0.0 although ^1.0 allows 1.1.0; the alias names it,
    // and the parent's values reach it under the alias.
    assert_eq!(maps["web-cache"]["version"], "1.0.0", "{maps:?}");
    assert_eq!(maps["web-cache"]["greeting"], "from-parent", "{maps:?}");
    assert_eq!(maps["web-common"]["version"], "2.0.0", "{maps:?}");
    assert_eq!(maps["web-lib"]["version"], "0.1.0", "{maps:?}");
    assert_eq!(maps["web-web"]["version"], "0.1.0", "{maps:?}");
    assert_eq!(maps.len(), 4, "{maps:?}");
    // The versions and digests fetched are in the app's history.
    let noted: Vec<String> = history(&hub, "web")
        .iter()
        .filter(|r| r["event"] == "dependencies" && r["commit"] == first.as_str())
        .map(|r| r["summary"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(noted.len(), 1, "{:?}", history(&hub, "web"));
    assert!(
        noted[0].starts_with("dependencies: redis 1.0.0@sha256:"),
        "{noted:?}"
    );
    assert!(noted[0].contains(", common 2.0.0@sha256:"), "{noted:?}");

    // Without Chart.lock the ranges resolve; the condition turns cache off.
    source.remove("charts/web/Chart.lock");
    source.write("charts/web/values.yaml", "cache:\n  enabled: false\n");
    let second = source.commit("no lock, cache disabled");
    source.publish(&served, "fleet");
    assert!(
        wait_until(SOON, || hub.cli_json(&["app", "show", "web"])["deployed"]
            == second.as_str()
            && config_maps(&hub, "web")
                .get("web-common")
                .is_some_and(|m| m["version"] == "2.0.5")),
        "ranges never resolved: {}\n{:?}",
        hub.cli_json(&["app", "show", "web"]),
        config_maps(&hub, "web")
    );
    let maps = config_maps(&hub, "web");
    assert!(!maps.contains_key("web-cache"), "{maps:?}");
    assert_eq!(maps["web-lib"]["version"], "0.1.0");

    // A dependency no repository has: a clear error naming it and its
    // repository; the deployed commit stays.
    source.write(
        "charts/web/Chart.yaml",
        format!(
            "{chart_yaml}- name: ghost\n  version: ^9\n  repository: {}\n",
            server.url()
        ),
    );
    let third = source.commit("a dependency that does not exist");
    source.publish(&served, "fleet");
    let error = || {
        hub.cli_json(&["app", "show", "web"])["errors"]["*"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        wait_until(SOON, || error().contains(&third[..7])),
        "no error: {}",
        hub.cli_json(&["app", "show", "web"])
    );
    let error = error();
    assert!(error.contains("dependency ghost"), "{error}");
    assert!(error.contains(&server.url()), "{error}");
    assert!(
        error.contains("chart ghost is not in the repository's index.yaml"),
        "{error}"
    );
    let status = hub.cli_json(&["status", "web"]);
    assert_eq!(status[0]["desired_commit"], second.as_str(), "{status}");

    // A chart from the chart repository depending on another of its
    // charts by the repo's name (`@charts`): fetched with its credentials.
    let umbrella_yaml = "apiVersion: v2\nname: umbrella\nversion: 1.0.0\ndependencies:\n\
         - name: redis\n  version: ~1.1\n  repository: '@charts'\n";
    server.publish(
        "umbrella",
        "1.0.0",
        &[
            ("Chart.yaml", umbrella_yaml),
            ("templates/cm.yaml", SUB_CONFIG_MAP),
        ],
    );
    hub.cli_ok(&[
        "repo",
        "add",
        "charts2",
        &server.url(),
        "--type",
        "helm",
        "--username",
        "robot",
        "--password-file",
        password.to_str().unwrap(),
        "--ca-file",
        server.ca_pem_path().to_str().unwrap(),
        "--interval",
        "1s",
    ]);
    // lighttpd may serve the index it had a second ago: wait for the new one.
    assert!(
        wait_until(SOON, || hub.cli_json(&["repo", "show", "charts2"])["refs"]
            == 4),
        "umbrella never listed: {}",
        hub.cli_json(&["repo", "show", "charts2"])
    );
    let out = hub.cli(&[
        "app", "create", "umbrella", "--repo", "charts2", "--chart", "umbrella",
    ]);
    assert!(
        out.success() || out.stderr.contains("waiting for"),
        "{}",
        out.stderr
    );
    assert!(
        wait_until(
            SOON,
            || hub.cli_json(&["app", "show", "umbrella"])["assigned"] == 1
        ),
        "umbrella never assigned: {}",
        hub.cli_json(&["app", "show", "umbrella"])
    );
    let maps = config_maps(&hub, "umbrella");
    assert_eq!(maps["umbrella-redis"]["version"], "1.1.0", "{maps:?}");
    assert_eq!(maps["umbrella-umbrella"]["version"], "1.0.0", "{maps:?}");
}

/// RFC 4648 base64url without padding (JWT segments).
fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// libtrust's key id, which distribution's token auth looks a `kid` up
/// by: the first 240 bits of the SPKI's sha256, base32, in groups of 4.
fn libtrust_key_id(spki_der: &[u8]) -> String {
    use sha2::Digest as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hash = sha2::Sha256::digest(spki_der);
    let mut bits = 0u32;
    let mut count = 0;
    let mut b32 = String::new();
    for byte in &hash[..30] {
        bits = (bits << 8) | u32::from(*byte);
        count += 8;
        while count >= 5 {
            count -= 5;
            b32.push(ALPHABET[((bits >> count) & 31) as usize] as char);
        }
    }
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}

/// Signs registry tokens as a token server does: ES256 with a key whose
/// certificate is the registry's `rootcertbundle`.
struct TokenSigner {
    key: ring::signature::EcdsaKeyPair,
    kid: String,
    cert_pem: String,
}

const TOKEN_SERVICE: &str = "switchyard-test-registry";
const TOKEN_ISSUER: &str = "switchyard-test-issuer";

impl TokenSigner {
    fn new() -> TokenSigner {
        use rcgen::PublicKeyData as _;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["token-signer".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let signing = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        TokenSigner {
            key: signing,
            kid: libtrust_key_id(&key.subject_public_key_info()),
            cert_pem: cert.pem(),
        }
    }

    /// A JWT granting `actions` on `repository`.
    fn token(&self, repository: &str, actions: &[&str]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "kid": self.kid});
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER, "sub": "", "aud": TOKEN_SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now - 10, "jti": format!("{now}-{repository}"),
            "access": [{"type": "repository", "name": repository, "actions": actions}],
        });
        let signed = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let signature = self
            .key
            .sign(&ring::rand::SystemRandom::new(), signed.as_bytes())
            .unwrap();
        format!("{signed}.{}", base64url(signature.as_ref()))
    }
}

/// A token server on loopback HTTP: answers `GET /token?service=…&scope=…`
/// with a token for the scope asked; counts what it issued. Serves at
/// most 1,000 requests and for at most five minutes.
struct TokenServer {
    port: u16,
    issued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TokenServer {
    fn start(signer: TokenSigner) -> TokenServer {
        use std::io::{Read as _, Write as _};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let issued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (count, stopped) = (issued.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
            let mut served = 0;
            while served < 1000 && std::time::Instant::now() < deadline {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                served += 1;
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .unwrap();
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let target = head.split(' ').nth(1).unwrap_or("/");
                let url = reqwest::Url::parse(&format!("http://token{target}")).unwrap();
                let scope = url
                    .query_pairs()
                    .find(|(k, _)| k == "scope")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                // `repository:NAME:ACTIONS`.
                let mut parts = scope.splitn(3, ':');
                let (_, name, actions) = (parts.next(), parts.next(), parts.next());
                let actions: Vec<&str> = actions.unwrap_or("").split(',').collect();
                let token = signer.token(name.unwrap_or(""), &actions);
                count.fetch_add(1, Ordering::Relaxed);
                let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer { port, issued, stop }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn an_oci_registry_with_token_auth_is_pulled_from_with_a_bearer_token() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let signer = TokenSigner::new();
    let bundle = dir.path().join("token-signer.pem");
    std::fs::write(&bundle, &signer.cert_pem).unwrap();
    let push = signer.token("charts/hello", &["pull", "push"]);
    let tokens = TokenServer::start(signer);
    let auth = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {TOKEN_SERVICE}\n    \
         issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
        tokens.port,
        bundle.display()
    );
    let registry = OciRegistry::start_with(&auth, Some(push));
    let files = [("values.yaml", VALUES), ("templates/cm.yaml", CONFIG_MAP)];
    let archive = switchyard_tests::chart_server::pack_chart("hello", "1.0.0", &files);
    registry.push("hello", "1.0.0", &archive);

    // The registry enforces token auth: without a token, a 401 and a
    // challenge naming the realm.
    let pem = std::fs::read(registry.ca_pem_path()).unwrap();
    let anonymous = reqwest::blocking::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .build()
        .unwrap()
        .get(format!(
            "https://127.0.0.1:{}/v2/charts/hello/tags/list",
            registry.port
        ))
        .send()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let challenge = anonymous.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    assert_eq!(tokens.issued.load(std::sync::atomic::Ordering::Relaxed), 0);

    let hub = TestHub::start(dir.path(), &[]);
    hub.cli_ok(&[
        "repo",
        "add",
        "registry",
        &format!("oci://127.0.0.1:{}/charts", registry.port),
        "--type",
        "oci",
        "--ca-file",
        registry.ca_pem_path().to_str().unwrap(),
        "--interval",
        "1s",
    ]);
    hub.add_cluster("c1", &[]);
    let out = hub.cli(&[
        "app", "create", "hello", "--repo", "registry", "--chart", "hello",
    ]);
    assert!(
        out.success() || out.stderr.contains("waiting for"),
        "{}",
        out.stderr
    );
    assert!(
        wait_until(SOON, || hub.cli_json(&["app", "show", "hello"])["assigned"]
            == 1),
        "never deployed: {}\n{}",
        hub.cli_json(&["app", "show", "hello"]),
        hub.cli_json(&["repo", "show", "registry"])
    );
    let maps = config_maps(&hub, "hello");
    assert_eq!(maps["hello-info"]["version"], "1.0.0", "{maps:?}");
    // Tokens were issued, and kept: the fetches every second do not each
    // ask for one.
    let issued = tokens.issued.load(std::sync::atomic::Ordering::Relaxed);
    assert!(issued >= 1, "no token was asked for");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let later = tokens.issued.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(later, issued, "a token per request: not cached");
}

/// A registry served over plain HTTP (`helm --plain-http`): an HTTPS
/// attempt fails with a clear error rather than hanging; `--plain-http`
/// reaches it, an app from it deploys and a Git chart's dependency on it is
/// fetched over HTTP; the setting shows in `repo show` and `export`; a
/// password over plain HTTP to another host, and --plain-http for a Helm
/// repository, are refused.
#[test]
fn an_oci_registry_over_plain_http_is_reached_with_plain_http() {
    use switchyard_tests::git_server::{GitDaemon, GitRepoBuilder};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let registry = OciRegistry::start_plain();
    let files = [("values.yaml", VALUES), ("templates/cm.yaml", CONFIG_MAP)];
    let archive = switchyard_tests::chart_server::pack_chart("hello", "1.0.0", &files);
    let digest = registry.push("hello", "1.0.0", &archive);
    let sub = [("templates/cm.yaml", SUB_CONFIG_MAP)];
    let common = switchyard_tests::chart_server::pack_chart("common", "2.0.0", &sub);
    registry.push("common", "2.0.0", &common);
    let oci_url = format!("oci://127.0.0.1:{}/charts", registry.port);
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();

    let hub = TestHub::start(dir.path(), &[]);
    // Refused before anything is stored.
    let out = hub.cli(&[
        "repo",
        "add",
        "remote",
        "oci://registry.example.com/charts",
        "--type",
        "oci",
        "--plain-http",
        "--username",
        "bot",
        "--password-file",
        password.to_str().unwrap(),
    ]);
    assert!(!out.success(), "{}", out.stdout);
    eprintln!("repo add remote --plain-http --username: {}", out.stderr);
    assert!(
        out.stderr
            .contains("refusing to send a password over plain HTTP"),
        "{}",
        out.stderr
    );
    let out = hub.cli(&[
        "repo",
        "add",
        "web",
        "http://charts.example.com",
        "--type",
        "helm",
        "--plain-http",
    ]);
    assert!(!out.success(), "{}", out.stdout);
    eprintln!("repo add web --type helm --plain-http: {}", out.stderr);
    assert!(
        out.stderr.contains("--plain-http is for OCI registries"),
        "{}",
        out.stderr
    );
    assert_eq!(hub.cli_json(&["repo", "list"]).as_array().unwrap().len(), 0);

    // Over HTTPS the plain registry answers nonsense: a clear error, soon.
    hub.cli_ok(&[
        "repo",
        "add",
        "tls",
        &oci_url,
        "--type",
        "oci",
        "--interval",
        "1s",
    ]);
    hub.cli_ok(&[
        "app",
        "create",
        "tried",
        "--repo",
        "tls",
        "--chart",
        "hello",
        "--chart-version",
        "1.0.0",
    ]);
    let started = std::time::Instant::now();
    assert!(
        wait_until(SOON, || hub.cli_json(&["repo", "show", "tls"])["error"]
            .is_string()),
        "no error: {}",
        hub.cli_json(&["repo", "show", "tls"])
    );
    let error = hub.cli_json(&["repo", "show", "tls"])["error"]
        .as_str()
        .unwrap()
        .to_owned();
    eprintln!(
        "HTTPS to a plain-HTTP registry, after {:?}: {error}",
        started.elapsed()
    );
    assert!(error.contains("--plain-http"), "{error}");
    hub.cli_ok(&["app", "delete", "tried"]);
    hub.cli_ok(&["repo", "remove", "tls"]);

    // With --plain-http: an app from it deploys.
    hub.cli_ok(&[
        "repo",
        "add",
        "registry",
        &oci_url,
        "--type",
        "oci",
        "--plain-http",
        "--username",
        "bot",
        "--password-file",
        password.to_str().unwrap(),
        "--interval",
        "1s",
    ]);
    let shown = hub.cli_json(&["repo", "show", "registry"]);
    assert_eq!(shown["plain_http"], true, "{shown}");
    let text = hub.cli_ok(&["repo", "show", "registry"]);
    assert!(text.contains("Plain HTTP:     yes"), "{text}");
    eprintln!("repo show registry:\n{text}");
    let mut agent = hub.connect_agent(dir.path(), "edge", &[]);
    let out = hub.cli(&[
        "app",
        "create",
        "hello",
        "--repo",
        "registry",
        "--chart",
        "hello",
        "--chart-version",
        "^1.0",
    ]);
    assert!(
        out.success() || out.stderr.contains("waiting for"),
        "{}",
        out.stderr
    );
    assert!(
        wait_until(SOON, || version_of(
            &hub.cli_json(&["app", "show", "hello"])["deployed"]
        ) == "1.0.0"),
        "never resolved: {}\n{}",
        hub.cli_json(&["app", "show", "hello"]),
        hub.cli_json(&["repo", "show", "registry"])
    );
    assert_eq!(
        hub.cli_json(&["app", "show", "hello"])["latest"],
        format!("1.0.0@{digest}")
    );
    agent.wait_plan("from the plain-HTTP registry", |p| {
        p.contains("app hello at 1.0.0") && p.contains("would apply ConfigMap")
    });
    let exported = hub.cli_ok(&["export"]);
    assert!(
        exported.contains("type: oci") && exported.contains("plainHttp: true"),
        "{exported}"
    );
    eprintln!("export:\n{exported}");

    // A Git chart's dependency on the registry's URL goes over HTTP too.
    let source = GitRepoBuilder::new();
    source.write(
        "charts/web/Chart.yaml",
        format!(
            "apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n\
             - name: common\n  version: ~2.0\n  repository: {oci_url}\n"
        ),
    );
    source.write("charts/web/templates/cm.yaml", SUB_CONFIG_MAP);
    let first = source.commit("web depends on common from the plain-HTTP registry");
    let served = dir.path().join("served");
    source.publish(&served, "fleet");
    let daemon = GitDaemon::start(&served);
    hub.cli_ok(&["repo", "add", "fleet", &daemon.url("fleet.git")]);
    assert!(
        hub.repo_reaches("fleet", &first),
        "first fetch never happened"
    );
    hub.cli_ok(&[
        "app",
        "create",
        "web",
        "--repo",
        "fleet",
        "--path",
        "charts/web",
        "--renderer",
        "helm",
    ]);
    assert!(
        wait_until(SOON, || hub.cli_json(&["app", "show", "web"])["assigned"]
            == 1),
        "never assigned: {}",
        hub.cli_json(&["app", "show", "web"]),
    );
    let out = hub.cli(&["app", "manifests", "web", "--cluster", "edge", "-o", "json"]);
    assert!(out.success(), "app manifests web: {}", out.stderr);
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let common = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["metadata"]["name"] == "web-common")
        .unwrap_or_else(|| panic!("no web-common in {list}"));
    assert_eq!(common["data"]["version"], "2.0.0", "{common}");
}
