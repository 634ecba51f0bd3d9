//! Checking raw documents: every value validated (each problem reported
//! with its line), canonical specs built, and references between
//! documents and the hub's objects checked.

use super::documents::{
    API_VERSION, AppSpec, Document, GroupSpec, HelmSpec, Kind, Origin, Problem, RepoSpec, Sourced,
    Spec, Target,
};
use super::parse::{Field, RawDocument, RawSpec, line_of};
use crate::gitops::{self, check_url, normalize_app_path, renderer_kind};
use crate::store::RepoKind;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use switchyard_common::selector::Selector;
use switchyard_common::{NameKind, validate_name};

/// The problems found in one document.
struct Problems<'a> {
    origin: &'a Origin,
    found: Vec<Problem>,
}

impl Problems<'_> {
    fn add(&mut self, line: usize, message: String) {
        self.found.push(Problem {
            origin: Origin {
                line,
                ..self.origin.clone()
            },
            message,
        });
    }

    fn count(&self) -> usize {
        self.found.len()
    }
}

/// Check one document. Every problem is reported, not just the first.
pub(super) fn validate(raw: RawDocument, origin: &Origin) -> Result<Sourced, Vec<Problem>> {
    let mut problems = Problems {
        origin,
        found: Vec::new(),
    };
    let mut problem = |line: usize, message: String| problems.add(line, message);
    match &raw.api_version {
        None => problem(
            origin.line,
            format!("apiVersion is missing; use {API_VERSION}"),
        ),
        Some(v) if v.value != API_VERSION => problem(
            line_of(&v.referenced),
            format!(
                "apiVersion {:?} is not supported; use {API_VERSION}",
                v.value
            ),
        ),
        Some(_) => {}
    }
    let kind = match &raw.kind {
        None => {
            problem(
                origin.line,
                "kind is missing; use Repo, App or ClusterGroup".into(),
            );
            None
        }
        Some(k) => {
            let kind = Kind::from_document(&k.value);
            if kind.is_none() {
                problem(
                    line_of(&k.referenced),
                    format!("kind {:?} is not one of Repo, App, ClusterGroup", k.value),
                );
            }
            kind
        }
    };
    let name = match raw.metadata.as_ref().and_then(|m| m.value.name.as_ref()) {
        None => {
            let line = raw
                .metadata
                .as_ref()
                .map_or(origin.line, |m| line_of(&m.referenced));
            problem(line, "metadata.name is missing".into());
            None
        }
        Some(n) => {
            // An unknown kind is reported above; its name is still checked
            // by the one rule every kind shares.
            let name_kind = match kind {
                Some(Kind::Repo) => NameKind::Repo,
                Some(Kind::ClusterGroup) => NameKind::Group,
                Some(Kind::App) | None => NameKind::App,
            };
            match validate_name(name_kind, &n.value) {
                Ok(()) => Some(n.value.clone()),
                Err(e) => {
                    problem(line_of(&n.referenced), format!("metadata.name: {e}"));
                    None
                }
            }
        }
    };
    let spec_line = raw
        .spec
        .as_ref()
        .map_or(origin.line, |s| line_of(&s.referenced));
    let spec = raw.spec.map(|s| s.value).unwrap_or_default();
    let Some(kind) = kind else {
        return Err(problems.found);
    };
    for (field, line) in spec.present() {
        if !kind.fields().contains(&field) {
            problem(
                line,
                format!(
                    "spec.{field} is not a field of {kind}; {kind} has {}",
                    kind.fields().join(", ")
                ),
            );
        }
    }
    let mut references = BTreeMap::new();
    let built = match kind {
        Kind::Repo => repo_spec_of(&spec, spec_line, &mut problems).map(Spec::Repo),
        Kind::ClusterGroup => group_spec_of(&spec, &mut problems).map(Spec::ClusterGroup),
        Kind::App => {
            if let Some(repo) = &spec.repo {
                references.insert("repo", line_of(&repo.referenced));
            }
            if let Some(group) = spec.target.as_ref().and_then(|t| t.value.group.as_ref()) {
                references.insert("group", line_of(&group.referenced));
            }
            app_spec_of(&spec, spec_line, &mut problems).map(Spec::App)
        }
    };
    match (built, name) {
        (Some(spec), Some(name)) if problems.count() == 0 => Ok(Sourced {
            document: Document::new(&name, spec),
            origin: origin.clone(),
            references,
        }),
        _ => Err(problems.found),
    }
}

fn text(field: &Field<String>) -> Option<String> {
    field.as_ref().map(|f| f.value.clone())
}

fn line(field: &Field<String>) -> Option<usize> {
    field.as_ref().map(|f| line_of(&f.referenced))
}

fn flag(field: &Field<bool>) -> bool {
    field.as_ref().is_some_and(|f| f.value)
}

/// `interval` as the hub keeps it: whole seconds, at least one.
pub(super) fn canonical_interval(text: &str) -> Result<String, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration such as 30s or 5m: {e}"))?;
    if duration.as_secs() == 0 {
        return Err(format!("{text:?} is shorter than the 1s minimum"));
    }
    Ok(humantime::format_duration(Duration::from_secs(duration.as_secs())).to_string())
}

fn repo_spec_of(spec: &RawSpec, spec_line: usize, problems: &mut Problems<'_>) -> Option<RepoSpec> {
    let before = problems.count();
    let mut problem = |line: usize, message: String| problems.add(line, message);
    let url = match &spec.url {
        None => {
            problem(spec_line, "spec.url is missing".into());
            String::new()
        }
        Some(u) if text(&spec.repo_type).as_deref() == Some("oci") => {
            gitops::check_oci_url(&u.value).unwrap_or_else(|e| {
                problem(line_of(&u.referenced), format!("spec.{}", invalid_text(&e)));
                String::new()
            })
        }
        Some(u) => check_url(&u.value).unwrap_or_else(|e| {
            problem(line_of(&u.referenced), format!("spec.{}", invalid_text(&e)));
            String::new()
        }),
    };
    let interval = match &spec.interval {
        None => canonical_interval("30s").expect("default interval"),
        Some(i) => canonical_interval(&i.value).unwrap_or_else(|e| {
            problem(line_of(&i.referenced), format!("spec.interval: {e}"));
            String::new()
        }),
    };
    if spec.username.is_some() != spec.password_file.is_some() {
        let at = line(&spec.username)
            .or(line(&spec.password_file))
            .unwrap_or(spec_line);
        problem(
            at,
            "spec.username and spec.passwordFile go together: the password or token is read from that file on the hub's machine".into(),
        );
    }
    for (field, value) in [
        ("passwordFile", &spec.password_file),
        ("caFile", &spec.ca_file),
        ("webhookSecretFile", &spec.webhook_secret_file),
    ] {
        if let Some(v) = value
            && !v.value.starts_with('/')
        {
            problem(
                line_of(&v.referenced),
                format!(
                    "spec.{field} {:?} must be an absolute path on the hub's machine",
                    v.value
                ),
            );
        }
    }
    if let Some(b) = &spec.branch
        && b.value.trim().is_empty()
    {
        problem(line_of(&b.referenced), "spec.branch is empty".into());
    }
    let repo_type = text(&spec.repo_type).filter(|t| t != "git");
    let helm = matches!(repo_type.as_deref(), Some("helm" | "oci"));
    if let Some(t) = &spec.repo_type
        && !matches!(t.value.as_str(), "git" | "helm" | "oci")
    {
        problem(
            line_of(&t.referenced),
            format!("spec.type {:?} is not git, helm or oci", t.value),
        );
    }
    if helm {
        for (field, value) in [
            ("branch", &spec.branch),
            ("webhookSecretFile", &spec.webhook_secret_file),
        ] {
            if let Some(v) = value {
                problem(
                    line_of(&v.referenced),
                    format!("spec.{field}: a chart repository (type helm) has none"),
                );
            }
        }
        if repo_type.as_deref() == Some("helm")
            && !(url.starts_with("https://") || url.starts_with("http://") || url.is_empty())
        {
            problem(
                line(&spec.url).unwrap_or(spec_line),
                format!("spec.url {url:?}: a chart repository is served over https:// or http://"),
            );
        }
    }
    if let Some(p) = &spec.plain_http {
        let kind = match repo_type.as_deref() {
            Some("oci") => RepoKind::Oci,
            Some("helm") => RepoKind::Helm,
            _ => RepoKind::Git,
        };
        if let Err(e) = gitops::check_plain_http(kind, &url, p.value, spec.username.is_some()) {
            problem(line_of(&p.referenced), format!("spec.plainHttp: {e}"));
        }
    }
    (problems.count() == before).then(|| RepoSpec {
        url,
        repo_type,
        branch: match helm {
            true => String::new(),
            false => text(&spec.branch).unwrap_or_else(|| "main".into()),
        },
        interval,
        username: text(&spec.username),
        password_file: text(&spec.password_file),
        ca_file: text(&spec.ca_file),
        plain_http: flag(&spec.plain_http),
        webhook_secret_file: text(&spec.webhook_secret_file),
    })
}

fn canonical_selector(text: &str) -> Result<String, String> {
    Selector::parse(text)
        .map(|s| s.to_string())
        .map_err(|e| format!("{text:?} is not a label selector: {e}"))
}

fn group_spec_of(spec: &RawSpec, problems: &mut Problems<'_>) -> Option<GroupSpec> {
    match &spec.selector {
        None => Some(GroupSpec {
            selector: String::new(),
        }),
        Some(s) => match canonical_selector(&s.value) {
            Ok(selector) => Some(GroupSpec { selector }),
            Err(e) => {
                problems.add(line_of(&s.referenced), format!("spec.selector: {e}"));
                None
            }
        },
    }
}

fn invalid_text(error: &gitops::Error) -> String {
    match error {
        gitops::Error::Invalid { field, message } => format!("{field}: {message}"),
        other => other.to_string(),
    }
}

fn app_spec_of(spec: &RawSpec, spec_line: usize, problems: &mut Problems<'_>) -> Option<AppSpec> {
    let before = problems.count();
    let mut problem = |line: usize, message: String| problems.add(line, message);
    let repo = text(&spec.repo).unwrap_or_else(|| {
        problem(spec_line, "spec.repo is missing".into());
        String::new()
    });
    let chart = text(&spec.chart).filter(|c| !c.is_empty());
    let path = match &spec.path {
        // A chart from a chart repository has no path.
        None if chart.is_some() => ".".into(),
        None => {
            problem(spec_line, "spec.path is missing".into());
            String::new()
        }
        Some(p) => normalize_app_path(&p.value).unwrap_or_else(|e| {
            problem(line_of(&p.referenced), format!("spec.{}", invalid_text(&e)));
            String::new()
        }),
    };
    let target = spec
        .target
        .as_ref()
        .map(|t| &t.value)
        .map(|t| Target {
            group: text(&t.group),
            selector: match &t.selector {
                None => String::new(),
                Some(s) => canonical_selector(&s.value).unwrap_or_else(|e| {
                    problem(line_of(&s.referenced), format!("spec.target.selector: {e}"));
                    String::new()
                }),
            },
        })
        .unwrap_or_default();
    if let Some(group) = spec.target.as_ref().and_then(|t| t.value.group.as_ref())
        && let Err(e) = validate_name(NameKind::Group, &group.value)
    {
        problem(
            line_of(&group.referenced),
            format!("spec.target.group: {e}"),
        );
    }
    let namespace = text(&spec.namespace).filter(|n| !n.is_empty());
    if let Some(ns) = &namespace
        && switchyard_common::ClusterName::new(ns.clone()).is_err()
    {
        problem(
            line(&spec.namespace).unwrap_or(spec_line),
            format!("spec.namespace {ns:?} is not a DNS label"),
        );
    }
    let renderer = text(&spec.renderer)
        .unwrap_or_else(|| if chart.is_some() { "helm" } else { "directory" }.into());
    if let Some(v) = &spec.chart_version {
        if chart.is_none() {
            problem(
                line_of(&v.referenced),
                "spec.chartVersion goes with spec.chart".into(),
            );
        } else if let Err(e) = switchyard_helm::semver_compat::compare(&v.value, "0.0.0") {
            problem(
                line_of(&v.referenced),
                format!("spec.chartVersion {:?}: {e}", v.value),
            );
        }
    }
    let plugin_command = text(&spec.plugin_command).filter(|c| !c.is_empty());
    if let Err(e) = renderer_kind(&renderer, plugin_command.as_deref()) {
        let e = e.replace("--plugin-command", "spec.pluginCommand");
        problem(
            line(&spec.renderer).unwrap_or(spec_line),
            format!("spec.renderer: {e}"),
        );
    }
    let helm = spec.helm.as_ref().map(|h| h.value.clone());
    if let Some(h) = &helm
        && let Err(e) = gitops::validate_helm(&renderer, &path, Some(&h.settings()))
    {
        let at = spec
            .helm
            .as_ref()
            .map_or(spec_line, |s| line_of(&s.referenced));
        problem(at, format!("spec.helm: {e}"));
    }
    let directory = spec.directory.as_ref().map(|d| d.value.clone());
    if let Err(e) = gitops::validate_directory(&renderer, directory.as_ref()) {
        let at = spec
            .directory
            .as_ref()
            .map_or(spec_line, |s| line_of(&s.referenced));
        problem(at, format!("spec.directory: {e}"));
    }
    let ignore_differences = spec
        .ignore_differences
        .as_ref()
        .map(|r| r.value.clone())
        .unwrap_or_default();
    if let Err(e) = gitops::validate_ignore_differences(&ignore_differences) {
        let at = spec
            .ignore_differences
            .as_ref()
            .map_or(spec_line, |s| line_of(&s.referenced));
        problem(at, format!("spec.{e}"));
    }
    (problems.count() == before).then(|| AppSpec {
        repo,
        path,
        revision: text(&spec.revision).filter(|r| !r.is_empty()),
        chart,
        chart_version: text(&spec.chart_version).filter(|v| !v.is_empty()),
        target,
        namespace,
        renderer,
        plugin_command,
        helm: helm.filter(|h| *h != HelmSpec::default()).map(Box::new),
        directory: directory.filter(|d| !d.is_default()).map(Box::new),
        manual: flag(&spec.manual),
        prune: flag(&spec.prune),
        self_heal: flag(&spec.self_heal),
        adopt: flag(&spec.adopt),
        prune_namespaces: flag(&spec.prune_namespaces),
        prune_crds: flag(&spec.prune_crds),
        force_conflicts: flag(&spec.force_conflicts),
        ignore_differences,
        create_namespace: spec.create_namespace.as_ref().is_none_or(|f| f.value),
        prune_last: flag(&spec.prune_last),
    })
}

/// Check what documents refer to and that no object is given twice. An
/// app's repo and group must be in `documents` or already on the hub.
pub fn check_references(
    documents: &[Sourced],
    hub_repos: &BTreeSet<String>,
    hub_groups: &BTreeSet<String>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<(Kind, &str), &Origin> = BTreeMap::new();
    for d in documents {
        let key = (d.document.kind, d.document.name());
        if let Some(first) = seen.insert(key, &d.origin) {
            problems.push(Problem {
                origin: d.origin.clone(),
                message: format!(
                    "{} {} is also defined at {first}",
                    d.document.kind,
                    d.document.name()
                ),
            });
        }
    }
    let declared = |kind: Kind, name: &str| seen.contains_key(&(kind, name));
    for d in documents {
        let Spec::App(app) = &d.document.spec else {
            continue;
        };
        let at = |what: &str| Origin {
            line: d.references.get(what).copied().unwrap_or(d.origin.line),
            ..d.origin.clone()
        };
        if !declared(Kind::Repo, &app.repo) && !hub_repos.contains(&app.repo) {
            problems.push(Problem {
                origin: at("repo"),
                message: format!(
                    "spec.repo: repo {} is neither on the hub nor in these files",
                    app.repo
                ),
            });
        }
        if let Some(group) = &app.target.group
            && !declared(Kind::ClusterGroup, group)
            && !hub_groups.contains(group)
        {
            problems.push(Problem {
                origin: at("group"),
                message: format!(
                    "spec.target.group: cluster group {group} is neither on the hub nor in these files"
                ),
            });
        }
    }
    problems
}
