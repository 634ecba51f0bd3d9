//! `switchyard import argocd`: Argo CD `Application` and `ApplicationSet` manifests translated into the Repo, App and ClusterGroup documents `apply` takes.
//!
//! Pure: the manifests come in as text, and what a translation needs of
//! the repository itself (whether a path holds a chart or a kustomization,
//! the directories and files a Git generator lists) is asked of a
//! [`Checkout`] the caller gives, if any. Whatever cannot be translated is
//! returned with the reason, never dropped silently; fields that are
//! dropped from a translated app are returned as notes.

use super::documents::{AppSpec, Document, GroupSpec, HelmSpec, RepoSpec, Spec, Target};
use crate::store::{DirectorySettings, JsonnetArg, JsonnetSettings};
use globset::Glob;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A local checkout of the repository the manifests deploy from: what
/// Argo CD itself looks at to pick a renderer and expand Git generators.
pub trait Checkout {
    /// Whether the file at `path` (repository-relative) exists.
    fn has_file(&self, path: &str) -> bool;
    /// Every directory, repository-relative, `/`-separated, sorted.
    fn directories(&self) -> Vec<String>;
    /// Every file, repository-relative, sorted.
    fn files(&self) -> Vec<String>;
    /// The text of a file, if readable.
    fn read(&self, path: &str) -> Option<String>;
}

/// Something the import could not translate, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslated {
    /// File (and document) it was read from.
    pub origin: String,
    /// `Application guestbook`, `ApplicationSet envs`, `ConfigMap x`…
    pub what: String,
    pub reason: String,
}

/// The outcome of an import.
#[derive(Debug, Default)]
pub struct Translation {
    /// ClusterGroups, then Repos, then Apps (the order `apply` applies).
    pub documents: Vec<Document>,
    pub untranslated: Vec<Untranslated>,
    /// What was assumed or dropped for documents that were translated.
    pub notes: Vec<String>,
}

/// Argo CD's in-cluster server, which it names `in-cluster`.
const IN_CLUSTER: &str = "https://kubernetes.default.svc";

/// The label a translated app selects its clusters by: Argo CD names a
/// destination cluster; Switchyard selects clusters by labels.
pub const CLUSTER_LABEL: &str = "argocd-cluster";

/// The interval repos are polled at: Argo CD's default.
const INTERVAL: &str = "3m";

#[derive(Default)]
struct Builder {
    groups: BTreeMap<String, GroupSpec>,
    /// URL -> (name, spec)
    repos: BTreeMap<String, (String, RepoSpec)>,
    apps: BTreeMap<String, (String, AppSpec)>,
    /// Notes shared by many apps: the note, and the apps it concerns.
    shared_notes: BTreeMap<String, Vec<String>>,
    out: Translation,
}

/// Split a file into YAML documents (a `---` line starts one), each parsed
/// to JSON; `List` kinds are flattened.
fn documents_of(label: &str, text: &str) -> Vec<(String, Result<Value, String>)> {
    let mut chunks: Vec<String> = vec![String::new()];
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            chunks.push(String::new());
        } else if let Some(last) = chunks.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    let mut out = Vec::new();
    let mut n = 0;
    for chunk in chunks {
        let meaningful = chunk
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if !meaningful {
            continue;
        }
        n += 1;
        let origin = format!("{label}: document {n}");
        match serde_saphyr::from_str::<Value>(&chunk) {
            Ok(Value::Object(map)) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                for item in map
                    .get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    out.push((format!("{origin}, item {}", item.0 + 1), Ok(item.1.clone())));
                }
            }
            Ok(v) => out.push((origin, Ok(v))),
            Err(e) => out.push((origin, Err(format!("not YAML: {e}")))),
        }
    }
    out
}

/// Translate every manifest in `inputs` (label, text).
pub fn translate(inputs: &[(String, String)], checkout: Option<&dyn Checkout>) -> Translation {
    let mut b = Builder::default();
    for (label, text) in inputs {
        for (origin, doc) in documents_of(label, text) {
            let doc = match doc {
                Ok(d) => d,
                Err(reason) => {
                    b.untranslated(&origin, "document", reason);
                    continue;
                }
            };
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let what = format!(
                "{} {}",
                if kind.is_empty() { "document" } else { &kind },
                name
            )
            .trim()
            .to_owned();
            let argo = doc["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("argoproj.io/"));
            match (argo, kind.as_str()) {
                (true, "Application") => {
                    if let Err(reason) = b.application(&doc, checkout) {
                        b.untranslated(&origin, &what, reason);
                    }
                }
                (true, "ApplicationSet") => b.application_set(&origin, &what, &doc, checkout),
                (true, "AppProject") => b.out.notes.push(format!(
                    "{origin}: AppProject {name} skipped: Switchyard has no projects; admin token roles restrict who may change what"
                )),
                _ => b.untranslated(
                    &origin,
                    &what,
                    "not an Argo CD Application or ApplicationSet".into(),
                ),
            }
        }
    }
    b.finish()
}

impl Builder {
    fn untranslated(&mut self, origin: &str, what: &str, reason: String) {
        self.out.untranslated.push(Untranslated {
            origin: origin.to_owned(),
            what: what.to_owned(),
            reason,
        });
    }

    fn finish(mut self) -> Translation {
        for (note, apps) in std::mem::take(&mut self.shared_notes) {
            self.out
                .notes
                .push(format!("{note} (apps {})", apps.join(", ")));
        }
        for (name, spec) in self.groups {
            self.out
                .documents
                .push(Document::new(&name, Spec::ClusterGroup(spec)));
        }
        let mut repos: Vec<_> = self.repos.into_values().collect();
        repos.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, spec) in repos {
            self.out
                .documents
                .push(Document::new(&name, Spec::Repo(spec)));
        }
        for (name, (_, spec)) in self.apps {
            self.out
                .documents
                .push(Document::new(&name, Spec::App(spec)));
        }
        self.out
    }

    /// The Repo document for `url`, created on first use: a Git repo
    /// following `revision` when it reads as a branch (else `main`), or with
    /// `repo_type` `helm`/`oci` a chart repository (no branch).
    fn repo(&mut self, url: &str, revision: Option<&str>, repo_type: Option<&str>) -> String {
        if let Some((name, _)) = self.repos.get(url) {
            return name.clone();
        }
        let base = url
            .trim_end_matches('/')
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("repo")
            .trim_end_matches(".git")
            .to_ascii_lowercase();
        let mut base: String = base
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        base = base.trim_matches('-').to_owned();
        if base.is_empty() {
            base = "repo".into();
        }
        let mut name = base.clone();
        let mut n = 2;
        while self.repos.values().any(|(existing, _)| *existing == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        let branch = match repo_type {
            Some(_) => String::new(),
            None => revision
                .filter(|r| is_branch_like(r))
                .unwrap_or("main")
                .to_owned(),
        };
        let spec = RepoSpec {
            url: url.to_owned(),
            branch,
            interval: INTERVAL.into(),
            username: None,
            password_file: None,
            ca_file: None,
            plain_http: false,
            webhook_secret_file: None,
            repo_type: repo_type.map(str::to_owned),
        };
        self.repos.insert(url.to_owned(), (name.clone(), spec));
        name
    }

    /// One Application; on success its App (and Repo) are recorded.
    fn application(&mut self, doc: &Value, checkout: Option<&dyn Checkout>) -> Result<(), String> {
        let argo_name = doc["metadata"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or("metadata.name is missing")?;
        // Argo CD names are DNS subdomains (`example.guestbook`); Switchyard
        // app names are DNS labels.
        let name = dns_label(argo_name);
        if switchyard_common::ClusterName::new(name.clone()).is_err() {
            return Err(format!(
                "name {argo_name:?} does not make a DNS label (lowercase letters, digits, '-'), which Switchyard app names are"
            ));
        }
        let spec = &doc["spec"];
        let source = match (&spec["source"], spec["sources"].as_array()) {
            (Value::Object(_), _) => spec["source"].clone(),
            (_, Some(sources)) if sources.len() == 1 => sources[0].clone(),
            (_, Some(_)) => {
                return Err(
                    "spec.sources with more than one source (multi-source apps) is not supported"
                        .into(),
                );
            }
            _ => return Err("spec.source is missing".into()),
        };
        let url = source["repoURL"]
            .as_str()
            .filter(|u| !u.is_empty())
            .ok_or("spec.source.repoURL is missing")?;
        let chart = source["chart"].as_str().filter(|c| !c.is_empty());
        if source.get("plugin").is_some_and(|p| !p.is_null()) {
            return Err("spec.source.plugin: config management plugins are not translated; use --renderer plugin with the plugin's command".into());
        }
        let path = source["path"]
            .as_str()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
            .unwrap_or(".")
            .to_owned();
        if let Some(c) = checkout
            && chart.is_none()
            && let Some(file) = argo_manifest_under(c, &path)
        {
            return Err(format!(
                "an app of apps ({file} is an Argo CD manifest): import its directory instead, switchyard import argocd -f CHECKOUT/{path}"
            ));
        }
        let revision = source["targetRevision"]
            .as_str()
            .filter(|r| !r.is_empty() && *r != "HEAD")
            .map(str::to_owned);
        let mut notes = Vec::new();
        let mut shared = Vec::new();
        if revision.is_none() && chart.is_none() {
            shared.push("targetRevision HEAD follows the Repo's branch: check spec.branch of the Repo is the repository's default branch".to_owned());
        }
        let chart_source = match chart {
            Some(chart) => Some(chart_source(url, chart, &source, &mut notes)?),
            None => None,
        };
        let (renderer, helm, directory) = match &chart_source {
            Some(c) => ("helm".to_owned(), c.helm.clone(), None),
            None => renderer_of(&source, &path, checkout, &mut notes, &mut shared)?,
        };
        let dest = &spec["destination"];
        let cluster = match (dest["name"].as_str(), dest["server"].as_str()) {
            (Some(n), _) if !n.is_empty() => n.to_owned(),
            (_, Some(IN_CLUSTER)) => "in-cluster".to_owned(),
            (_, Some(server)) if !server.is_empty() => cluster_label_value(server),
            _ => return Err("spec.destination names no cluster (name or server)".into()),
        };
        let selector = if cluster_label_valid(&cluster) {
            format!("{CLUSTER_LABEL}={cluster}")
        } else {
            return Err(format!(
                "destination cluster {cluster:?} cannot be a label value"
            ));
        };
        let sync = &spec["syncPolicy"];
        let automated = sync.get("automated").is_some_and(|a| !a.is_null());
        let options: Vec<&str> = sync["syncOptions"]
            .as_array()
            .map(|o| o.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let (create_namespace, prune_last, untranslated) = app_sync_options(&options);
        for (option, why) in untranslated {
            shared.push(format!(
                "syncPolicy.syncOptions {option:?} not translated: {why}"
            ));
        }
        let ignore_differences = ignore_differences(&spec["ignoreDifferences"], &mut notes);
        for field in ["info", "revisionHistoryLimit"] {
            if spec.get(field).is_some_and(|v| !v.is_null()) {
                notes.push(format!("spec.{field} not translated"));
            }
        }
        if sync.get("retry").is_some_and(|v| !v.is_null()) {
            notes.push("syncPolicy.retry not translated (the agent retries on its own)".into());
        }
        let (repo, revision) = match &chart_source {
            // The chart's targetRevision is its version (or range), not a Git revision.
            Some(c) => (self.repo(&c.url, None, Some(c.repo_type)), None),
            None => {
                let repo = self.repo(url, revision.as_deref(), None);
                // An app on the Repo's branch follows it, as `targetRevision` did.
                let revision = revision.filter(|r| {
                    self.repos
                        .get(url)
                        .is_none_or(|(_, spec)| spec.branch != *r)
                });
                (repo, revision)
            }
        };
        let app = AppSpec {
            repo,
            path,
            revision,
            target: Target {
                group: None,
                selector,
            },
            namespace: dest["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            renderer,
            plugin_command: None,
            helm: helm.map(Box::new),
            directory: directory.map(Box::new),
            chart: chart_source.as_ref().map(|c| c.chart.clone()),
            chart_version: chart_source.as_ref().and_then(|c| c.version.clone()),
            manual: !automated,
            prune: automated && sync["automated"]["prune"].as_bool().unwrap_or(false),
            self_heal: automated && sync["automated"]["selfHeal"].as_bool().unwrap_or(false),
            adopt: false,
            prune_namespaces: false,
            prune_crds: false,
            force_conflicts: false,
            ignore_differences,
            create_namespace,
            prune_last,
        };
        if let Some((_, existing)) = self.apps.get(&name)
            && *existing != app
        {
            return Err(format!("app {name} is translated twice, differently"));
        }
        if name != argo_name {
            notes.push(format!(
                "named {name}: Argo CD's name {argo_name:?} is not a DNS label"
            ));
        }
        for n in notes {
            self.out.notes.push(format!("app {name}: {n}"));
        }
        for n in shared {
            self.shared_notes.entry(n).or_default().push(name.clone());
        }
        self.apps.insert(name.clone(), (name, app));
        Ok(())
    }

    fn application_set(
        &mut self,
        origin: &str,
        what: &str,
        doc: &Value,
        checkout: Option<&dyn Checkout>,
    ) {
        let spec = &doc["spec"];
        let go = spec["goTemplate"].as_bool().unwrap_or(false);
        let template = &spec["template"];
        let set_name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or("appset")
            .to_owned();
        let generators = spec["generators"].as_array().cloned().unwrap_or_default();
        if generators.is_empty() {
            self.untranslated(origin, what, "spec.generators is empty".into());
            return;
        }
        for (i, generator) in generators.iter().enumerate() {
            let at = format!("{what} generator {}", i + 1);
            let result = match generator.as_object().and_then(|g| g.keys().next().cloned()) {
                Some(k) if k == "list" => {
                    self.list_generator(origin, &at, generator, template, go, checkout)
                }
                Some(k) if k == "clusters" => {
                    self.cluster_generator(&set_name, generator, template, go, checkout)
                }
                Some(k) if k == "git" => {
                    self.git_generator(origin, &at, generator, template, go, checkout)
                }
                Some(other) => Err(format!(
                    "the {other} generator is not supported (list, clusters and git are)"
                )),
                None => Err("an empty generator".into()),
            };
            if let Err(reason) = result {
                self.untranslated(origin, &at, reason);
            }
        }
    }

    /// Render `template` with each of `params` and translate the result.
    fn expand(
        &mut self,
        origin: &str,
        at: &str,
        template: &Value,
        go: bool,
        params: Vec<BTreeMap<String, String>>,
        checkout: Option<&dyn Checkout>,
    ) -> Result<(), String> {
        if params.is_empty() {
            return Err("the generator produces no parameters".into());
        }
        for p in params {
            let app = substitute(template, &p, go);
            let app_name = app["metadata"]["name"].as_str().unwrap_or("?").to_owned();
            if let Some(left) = unresolved(&app) {
                self.untranslated(
                    origin,
                    &format!("{at} app {app_name}"),
                    format!("template placeholder {left} has no value"),
                );
                continue;
            }
            let mut doc = app;
            doc["apiVersion"] = "argoproj.io/v1alpha1".into();
            doc["kind"] = "Application".into();
            if let Err(reason) = self.application(&doc, checkout) {
                self.untranslated(origin, &format!("{at} app {app_name}"), reason);
            }
        }
        Ok(())
    }

    fn list_generator(
        &mut self,
        origin: &str,
        at: &str,
        generator: &Value,
        template: &Value,
        go: bool,
        checkout: Option<&dyn Checkout>,
    ) -> Result<(), String> {
        let elements = generator["list"]["elements"]
            .as_array()
            .ok_or("list.elements is missing (elementsYaml is not supported)")?;
        let params = elements
            .iter()
            .map(|e| {
                let mut p = BTreeMap::new();
                flatten("", e, &mut p);
                p
            })
            .collect();
        let template = merged_template(template, &generator["list"]["template"]);
        self.expand(origin, at, &template, go, params, checkout)
    }

    /// A cluster generator is one app for every cluster a selector picks:
    /// a ClusterGroup of that selector, and an app targeting it.
    fn cluster_generator(
        &mut self,
        set_name: &str,
        generator: &Value,
        template: &Value,
        go: bool,
        checkout: Option<&dyn Checkout>,
    ) -> Result<(), String> {
        let clusters = &generator["clusters"];
        let selector = label_selector(&clusters["selector"])?;
        let mut params = BTreeMap::new();
        if let Some(values) = clusters["values"].as_object() {
            for (k, v) in values {
                if let Some(s) = v.as_str() {
                    params.insert(format!("values.{k}"), s.to_owned());
                }
            }
        }
        // The cluster's own parameters only make sense in the destination
        // (which a target replaces) and the name (which becomes the set's).
        let mut template = merged_template(template, &clusters["template"]);
        template["metadata"]["name"] = set_name.into();
        let mut destination = template["spec"]["destination"].clone();
        destination["name"] = Value::Null;
        destination["server"] = IN_CLUSTER.into();
        template["spec"]["destination"] = destination;
        let app = substitute(&template, &params, go);
        if let Some(left) = unresolved(&app) {
            return Err(format!(
                "template placeholder {left} varies per cluster outside the destination; Switchyard gives clusters' names and labels to manifests as ${{cluster.name}} and ${{cluster.labels.KEY}} instead"
            ));
        }
        let mut doc = app;
        doc["apiVersion"] = "argoproj.io/v1alpha1".into();
        doc["kind"] = "Application".into();
        self.application(&doc, checkout)?;
        if let Some((_, spec)) = self.apps.get_mut(set_name) {
            spec.target = Target {
                group: Some(set_name.to_owned()),
                selector: String::new(),
            };
        }
        self.groups.insert(
            set_name.to_owned(),
            GroupSpec {
                selector: selector.clone(),
            },
        );
        self.out.notes.push(format!(
            "app {set_name}: one app for the clusters of group {set_name} ({})",
            if selector.is_empty() {
                "every cluster"
            } else {
                selector.as_str()
            }
        ));
        Ok(())
    }

    fn git_generator(
        &mut self,
        origin: &str,
        at: &str,
        generator: &Value,
        template: &Value,
        go: bool,
        checkout: Option<&dyn Checkout>,
    ) -> Result<(), String> {
        let git = &generator["git"];
        let url = git["repoURL"].as_str().unwrap_or("?");
        let Some(checkout) = checkout else {
            return Err(format!(
                "a git generator lists {url} itself: pass --checkout DIR (a checkout of it) to expand it"
            ));
        };
        let template = merged_template(template, &git["template"]);
        let mut params = Vec::new();
        if let Some(dirs) = git["directories"].as_array() {
            let (mut include, mut exclude) = (Vec::new(), Vec::new());
            for d in dirs {
                let pattern = d["path"].as_str().ok_or("directories[].path is missing")?;
                let glob = Glob::new(pattern)
                    .map_err(|e| format!("directory pattern {pattern:?}: {e}"))?
                    .compile_matcher();
                if d["exclude"].as_bool().unwrap_or(false) {
                    exclude.push(glob);
                } else {
                    include.push(glob);
                }
            }
            for dir in checkout.directories() {
                // Argo CD's `*` stays within one directory level.
                let depth_ok = |g: &globset::GlobMatcher| {
                    g.is_match(&dir)
                        && g.glob().glob().matches('/').count() == dir.matches('/').count()
                };
                if include.iter().any(depth_ok) && !exclude.iter().any(|g| g.is_match(&dir)) {
                    params.push(path_params(&dir, go));
                }
            }
        } else if let Some(files) = git["files"].as_array() {
            for f in files {
                let pattern = f["path"].as_str().ok_or("files[].path is missing")?;
                let glob = Glob::new(pattern)
                    .map_err(|e| format!("file pattern {pattern:?}: {e}"))?
                    .compile_matcher();
                for file in checkout.files().into_iter().filter(|p| glob.is_match(p)) {
                    let text = checkout
                        .read(&file)
                        .ok_or_else(|| format!("{file}: cannot be read"))?;
                    let value: Value = serde_saphyr::from_str(&text)
                        .map_err(|e| format!("{file}: not JSON or YAML: {e}"))?;
                    let dir = file.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
                    let mut p = path_params(&dir, go);
                    let filename = file.rsplit('/').next().unwrap_or(&file).to_owned();
                    p.insert("path.filename".into(), filename);
                    flatten("", &value, &mut p);
                    params.push(p);
                }
            }
        } else {
            return Err("a git generator without directories or files".into());
        }
        self.expand(origin, at, &template, go, params, Some(checkout))
    }
}

/// The first manifest under `path` in the checkout that is an Argo CD
/// Application or ApplicationSet (or a template of one): deploying it
/// would hand the apps to an Argo CD that is not there.
fn argo_manifest_under(checkout: &dyn Checkout, path: &str) -> Option<String> {
    let prefix = if path == "." {
        String::new()
    } else {
        format!("{path}/")
    };
    checkout
        .files()
        .into_iter()
        .filter(|f| f.starts_with(&prefix))
        .filter(|f| [".yaml", ".yml", ".json"].iter().any(|x| f.ends_with(x)))
        .take(1000)
        .find(|f| {
            checkout.read(f).is_some_and(|text| {
                text.contains("argoproj.io/")
                    && (text.contains("kind: Application") || text.contains("\"Application"))
            })
        })
}

/// Whether a `targetRevision` reads as a branch, not a commit or a
/// version tag.
fn is_branch_like(revision: &str) -> bool {
    let commit = revision.len() >= 7 && revision.chars().all(|c| c.is_ascii_hexdigit());
    let version = revision
        .strip_prefix('v')
        .unwrap_or(revision)
        .starts_with(|c: char| c.is_ascii_digit());
    !commit && !version && !revision.contains('*')
}

/// `name` as a DNS label: lowercase, every other character `-`, at most
/// 63 characters.
fn dns_label(name: &str) -> String {
    let mapped: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let trimmed = mapped.trim_matches('-');
    trimmed
        .get(..63)
        .unwrap_or(trimmed)
        .trim_end_matches('-')
        .to_owned()
}

mod generators;
mod sources;

use generators::*;
use sources::*;

/// An Application's app-level `syncPolicy.syncOptions`: whether the app
/// creates its namespace (`CreateNamespace=true`; Argo CD's default is not
/// to), whether it prunes last (`PruneLast=true`), and the options not
/// translated, with the reason. Options that describe what Switchyard
/// always does translate to nothing.
fn app_sync_options(options: &[&str]) -> (bool, bool, Vec<(String, &'static str)>) {
    let mut create_namespace = false;
    let mut prune_last = false;
    let mut untranslated = Vec::new();
    for option in options.iter().map(|o| o.trim()) {
        match option {
            "CreateNamespace=true" => create_namespace = true,
            "CreateNamespace=false" => create_namespace = false,
            "PruneLast=true" => prune_last = true,
            // Always so here: server-side apply, no client-side validation
            // or dry run, only objects that differ are written, and ignore
            // rules are respected on apply.
            "ServerSideApply=true"
            | "Validate=false"
            | "Validate=true"
            | "SkipDryRunOnMissingResource=true"
            | "ApplyOutOfSyncOnly=true"
            | "RespectIgnoreDifferences=true"
            | "Prune=true"
            | "PruneLast=false"
            | "Replace=false" => {}
            "Prune=false" | "Prune=confirm" | "Delete=false" | "Replace=true" => {
                untranslated.push((
                    option.to_owned(),
                    "Switchyard reads it per object only: put it in the argocd.argoproj.io/sync-options annotation of the objects",
                ))
            }
            "ServerSideApply=false" | "ApplyOutOfSyncOnly=false" | "RespectIgnoreDifferences=false" => {
                untranslated.push((
                    option.to_owned(),
                    "Switchyard always applies server-side, only what differs, respecting ignoreDifferences",
                ))
            }
            other if other.starts_with("PrunePropagationPolicy=") => untranslated.push((
                other.to_owned(),
                "the agent deletes with the API server's default propagation (background)",
            )),
            other if other.starts_with("FailOnSharedResource=") => untranslated.push((
                other.to_owned(),
                "an object another app owns is never written and reported as a conflict",
            )),
            other => untranslated.push((other.to_owned(), "unknown sync option")),
        }
    }
    (create_namespace, prune_last, untranslated)
}

/// An Application's `ignoreDifferences`: rules by JSON pointer, jq path
/// expression and field manager carry over as they are.
fn ignore_differences(
    rules: &Value,
    notes: &mut Vec<String>,
) -> Vec<crate::store::IgnoreDifference> {
    if rules.is_null() {
        return Vec::new();
    }
    let parsed: Vec<crate::store::IgnoreDifference> = match serde_json::from_value(rules.clone()) {
        Ok(parsed) => parsed,
        Err(e) => {
            notes.push(format!("spec.ignoreDifferences not translated: {e}"));
            return Vec::new();
        }
    };
    let kept = parsed;
    if let Err(e) = crate::gitops::validate_ignore_differences(&kept) {
        notes.push(format!("spec.ignoreDifferences not translated: {e}"));
        return Vec::new();
    }
    kept
}

#[cfg(test)]
mod tests;
