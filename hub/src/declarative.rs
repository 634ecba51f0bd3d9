//! Declarative configuration: `apiVersion: switchyard.dev/v1` documents of
//! kind Repo, App and ClusterGroup, as `switchyard apply` reads them and
//! `switchyard export` writes them.
//!
//! Everything here is pure: parsing with file, document and line for every
//! problem, validation of values, and a canonical form of each spec so that
//! "unchanged" is plain equality between what a file asks for and what the
//! hub has. The command line does the I/O around it.

use crate::gitops::{
    self, AppRequest, AppView, GroupRequest, GroupView, RepoRequest, RepoView, check_url,
    normalize_app_path, renderer_kind, validate_repo_name,
};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;
use switchyard_common::selector::Selector;

/// The only API version there is.
pub const API_VERSION: &str = "switchyard.dev/v1";

/// Kinds of documents, in the order `apply` applies them: groups and repos
/// before the apps that name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    ClusterGroup,
    Repo,
    App,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::ClusterGroup, Kind::Repo, Kind::App];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ClusterGroup => "ClusterGroup",
            Kind::Repo => "Repo",
            Kind::App => "App",
        }
    }

    /// The lowercase word `apply` prints, as in `repo/config created`.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::ClusterGroup => "clustergroup",
            Kind::Repo => "repo",
            Kind::App => "app",
        }
    }

    /// A kind as a person types it on the command line: `repo`, `Repos`,
    /// `clustergroup`, `group`, …
    pub fn from_cli(text: &str) -> Option<Kind> {
        match text.to_ascii_lowercase().trim_end_matches('s') {
            "repo" => Some(Kind::Repo),
            "app" => Some(Kind::App),
            "clustergroup" | "group" => Some(Kind::ClusterGroup),
            _ => None,
        }
    }

    fn from_document(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Spec fields a document of this kind may have.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Repo => &[
                "url",
                "branch",
                "interval",
                "username",
                "passwordFile",
                "caFile",
                "webhookSecretFile",
            ],
            Kind::ClusterGroup => &["selector"],
            Kind::App => &[
                "repo",
                "path",
                "revision",
                "target",
                "namespace",
                "renderer",
                "pluginCommand",
                "manual",
                "prune",
                "selfHeal",
                "adopt",
                "pruneNamespaces",
                "pruneCrds",
                "forceConflicts",
            ],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A repo's settings in canonical form. Credentials are never in it, only
/// the paths of files on the hub's machine that hold them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoSpec {
    pub url: String,
    pub branch: String,
    /// As `humantime` prints it, so equal intervals compare equal.
    pub interval: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret_file: Option<String>,
}

/// A cluster group's settings in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSpec {
    pub selector: String,
}

/// Which clusters an app goes to: those its group selects and its own
/// selector selects, both; neither means every cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Target {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub selector: String,
}

impl Target {
    fn is_empty(&self) -> bool {
        self.group.is_none() && self.selector.is_empty()
    }
}

/// An app's settings in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSpec {
    pub repo: String,
    pub path: String,
    /// `None` follows the repo's branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Target::is_empty")]
    pub target: Target,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub renderer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_command: Option<String>,
    pub manual: bool,
    pub prune: bool,
    pub self_heal: bool,
    /// Opt-ins about objects the app did not create; exported only when on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prune_namespaces: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prune_crds: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force_conflicts: bool,
}

/// The spec of one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Spec {
    ClusterGroup(GroupSpec),
    Repo(RepoSpec),
    App(AppSpec),
}

impl Spec {
    pub fn kind(&self) -> Kind {
        match self {
            Spec::ClusterGroup(_) => Kind::ClusterGroup,
            Spec::Repo(_) => Kind::Repo,
            Spec::App(_) => Kind::App,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub name: String,
}

/// One document, as `export` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub api_version: &'static str,
    pub kind: Kind,
    pub metadata: Metadata,
    pub spec: Spec,
}

impl Document {
    pub fn new(name: &str, spec: Spec) -> Self {
        Self {
            api_version: API_VERSION,
            kind: spec.kind(),
            metadata: Metadata {
                name: name.to_owned(),
            },
            spec,
        }
    }

    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

/// Where something was read: file, document (from 1) and line (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub document: usize,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: document {}, line {}",
            self.file, self.document, self.line
        )
    }
}

/// A document read from a file, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    pub document: Document,
    pub origin: Origin,
    /// Lines of `spec.repo` and `spec.target.group`, for reference errors.
    references: BTreeMap<&'static str, usize>,
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub origin: Origin,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

// ----- what files hold, before validation -----

type Field<T> = Option<Spanned<T>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDocument {
    api_version: Field<String>,
    kind: Field<String>,
    metadata: Option<Spanned<RawMetadata>>,
    spec: Option<Spanned<RawSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    name: Field<String>,
}

/// Every kind's spec fields; which ones a kind may use is checked after.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    url: Field<String>,
    branch: Field<String>,
    interval: Field<String>,
    username: Field<String>,
    password_file: Field<String>,
    ca_file: Field<String>,
    webhook_secret_file: Field<String>,
    selector: Field<String>,
    repo: Field<String>,
    path: Field<String>,
    revision: Field<String>,
    target: Option<Spanned<RawTarget>>,
    namespace: Field<String>,
    renderer: Field<String>,
    plugin_command: Field<String>,
    manual: Field<bool>,
    prune: Field<bool>,
    self_heal: Field<bool>,
    adopt: Field<bool>,
    prune_namespaces: Field<bool>,
    prune_crds: Field<bool>,
    force_conflicts: Field<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    group: Field<String>,
    selector: Field<String>,
}

impl RawSpec {
    /// The fields present, with their lines.
    fn present(&self) -> Vec<(&'static str, usize)> {
        fn at<T>(f: &Option<Spanned<T>>) -> Option<usize> {
            f.as_ref().map(|s| line_of(&s.referenced))
        }
        [
            ("url", at(&self.url)),
            ("branch", at(&self.branch)),
            ("interval", at(&self.interval)),
            ("username", at(&self.username)),
            ("passwordFile", at(&self.password_file)),
            ("caFile", at(&self.ca_file)),
            ("webhookSecretFile", at(&self.webhook_secret_file)),
            ("selector", at(&self.selector)),
            ("repo", at(&self.repo)),
            ("path", at(&self.path)),
            ("revision", at(&self.revision)),
            ("target", at(&self.target)),
            ("namespace", at(&self.namespace)),
            ("renderer", at(&self.renderer)),
            ("pluginCommand", at(&self.plugin_command)),
            ("manual", at(&self.manual)),
            ("prune", at(&self.prune)),
            ("selfHeal", at(&self.self_heal)),
            ("adopt", at(&self.adopt)),
            ("pruneNamespaces", at(&self.prune_namespaces)),
            ("pruneCrds", at(&self.prune_crds)),
            ("forceConflicts", at(&self.force_conflicts)),
        ]
        .into_iter()
        .filter_map(|(name, line)| line.map(|l| (name, l)))
        .collect()
    }
}

fn line_of(location: &serde_saphyr::Location) -> usize {
    usize::try_from(location.line()).unwrap_or(usize::MAX)
}

/// Lines (from 1) where documents start: a `---` marker at the start of a
/// line begins a new document, and content before the first marker is a
/// document of its own.
fn document_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut content_seen = false;
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---"
            || line.starts_with("--- ")
            || line.starts_with("---\t")
            || line.starts_with("--- #");
        if is_marker {
            starts.push(i + 1);
            content_seen = true;
        } else if !content_seen {
            let trimmed = line.trim();
            if !(trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('%')) {
                starts.push(1);
                content_seen = true;
            }
        }
    }
    if starts.is_empty() {
        starts.push(1);
    }
    starts
}

/// Which document (from 1) holds `line`.
fn document_at(starts: &[usize], line: usize) -> usize {
    starts.iter().filter(|&&s| s <= line).count().max(1)
}

/// Parse one file's documents (YAML, several separated by `---`, or a JSON
/// array as `export -o json` prints) and check every value. Returns what
/// is valid and every problem found; the caller applies nothing if there is
/// any problem.
pub fn parse(file: &str, text: &str) -> (Vec<Sourced>, Vec<Problem>) {
    let starts = document_starts(text);
    let is_array = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with('['));
    let first = match parse_text(file, text, &starts, is_array) {
        Ok(parsed) => return parsed,
        Err(problem) => problem,
    };
    if is_array || starts.len() < 2 {
        return (Vec::new(), vec![first]);
    }
    // The parser stops at the first malformed document; parse each one on
    // its own so that every document's problems are reported at once. A
    // document is padded with the blank lines before it, so its lines stay
    // the file's.
    let lines: Vec<&str> = text.lines().collect();
    let (mut documents, mut problems) = (Vec::new(), Vec::new());
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(lines.len(), |&next| next - 1);
        let chunk = "\n".repeat(start - 1) + &lines[start - 1..end].join("\n");
        match parse_text(file, &chunk, &starts, false) {
            Ok((found, wrong)) => {
                documents.extend(found);
                problems.extend(wrong);
            }
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        // Split apart, the documents parse: keep the parser's own word.
        problems.push(first);
    }
    (documents, problems)
}

/// Parse `text` whole: the parser's first error, or every document checked.
fn parse_text(
    file: &str,
    text: &str,
    starts: &[usize],
    is_array: bool,
) -> Result<(Vec<Sourced>, Vec<Problem>), Problem> {
    let origin = |line: usize| Origin {
        file: file.to_owned(),
        document: document_at(starts, line),
        line,
    };
    let raw: Result<Vec<Spanned<RawDocument>>, _> = if is_array {
        serde_saphyr::from_str(text)
    } else {
        serde_saphyr::from_multiple(text)
    };
    let raw = raw.map_err(|error| {
        let line = error.location().map_or(1, |l| line_of(&l));
        Problem {
            origin: origin(line),
            message: error_message(&error),
        }
    })?;
    let mut documents = Vec::new();
    let mut problems = Vec::new();
    for (index, doc) in raw.into_iter().enumerate() {
        let line = line_of(&doc.referenced);
        let mut origin = origin(line);
        if is_array {
            // One file, one JSON array: the item number is the document.
            origin.document = index + 1;
        }
        match validate(doc.value, &origin) {
            Ok(sourced) => documents.push(sourced),
            Err(mut found) => {
                for problem in &mut found {
                    if is_array {
                        problem.origin.document = origin.document;
                    }
                }
                problems.extend(found);
            }
        }
    }
    Ok((documents, problems))
}

/// serde-saphyr's message without its location and snippet, which the
/// caller reports in its own words.
fn error_message(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    // "… at line 3, column 5" is said by the caller already.
    let text = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.trim().to_owned()
}

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
fn validate(raw: RawDocument, origin: &Origin) -> Result<Sourced, Vec<Problem>> {
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
        Some(n) => match validate_repo_name(&n.value) {
            Ok(()) => Some(n.value.clone()),
            Err(e) => {
                problem(
                    line_of(&n.referenced),
                    format!("metadata.{}", invalid_text(&e)),
                );
                None
            }
        },
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
fn canonical_interval(text: &str) -> Result<String, String> {
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
    (problems.count() == before).then(|| RepoSpec {
        url,
        branch: text(&spec.branch).unwrap_or_else(|| "main".into()),
        interval,
        username: text(&spec.username),
        password_file: text(&spec.password_file),
        ca_file: text(&spec.ca_file),
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
    let path = match &spec.path {
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
        && let Err(e) = validate_repo_name(&group.value)
    {
        problem(
            line_of(&group.referenced),
            format!("spec.target.group: {}", invalid_text(&e)),
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
    let renderer = text(&spec.renderer).unwrap_or_else(|| "directory".into());
    let plugin_command = text(&spec.plugin_command).filter(|c| !c.is_empty());
    if let Err(e) = renderer_kind(&renderer, plugin_command.as_deref()) {
        let e = e.replace("--plugin-command", "spec.pluginCommand");
        problem(
            line(&spec.renderer).unwrap_or(spec_line),
            format!("spec.renderer: {e}"),
        );
    }
    (problems.count() == before).then(|| AppSpec {
        repo,
        path,
        revision: text(&spec.revision).filter(|r| !r.is_empty()),
        target,
        namespace,
        renderer,
        plugin_command,
        manual: flag(&spec.manual),
        prune: flag(&spec.prune),
        self_heal: flag(&spec.self_heal),
        adopt: flag(&spec.adopt),
        prune_namespaces: flag(&spec.prune_namespaces),
        prune_crds: flag(&spec.prune_crds),
        force_conflicts: flag(&spec.force_conflicts),
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

// ----- between the API's views and requests and the canonical specs -----

impl RepoSpec {
    pub fn from_view(view: &RepoView) -> Self {
        Self {
            url: view.url.clone(),
            branch: view.branch.clone(),
            interval: canonical_interval(&view.interval).unwrap_or_else(|_| view.interval.clone()),
            username: view.username.clone(),
            password_file: view.password_file.clone(),
            ca_file: view.ca_file.clone(),
            webhook_secret_file: view.webhook_secret_file.clone(),
        }
    }

    pub fn request(&self, name: &str) -> RepoRequest {
        RepoRequest {
            name: name.to_owned(),
            url: self.url.clone(),
            branch: Some(self.branch.clone()),
            interval_secs: Some(
                humantime::parse_duration(&self.interval)
                    .map_or(30, |d| d.as_secs())
                    .max(1),
            ),
            username: self.username.clone(),
            password_file: self.password_file.clone(),
            ca_file: self.ca_file.clone(),
            webhook_secret_file: self.webhook_secret_file.clone(),
        }
    }
}

impl GroupSpec {
    pub fn from_view(view: &GroupView) -> Self {
        Self {
            selector: view.selector.clone(),
        }
    }

    pub fn request(&self, name: &str) -> GroupRequest {
        GroupRequest {
            name: name.to_owned(),
            selector: self.selector.clone(),
        }
    }
}

impl AppSpec {
    pub fn from_view(view: &AppView) -> Self {
        Self {
            repo: view.repo.clone(),
            path: view.path.clone(),
            revision: view.revision_configured.clone(),
            target: Target {
                group: view.group.clone(),
                selector: view.selector.clone(),
            },
            namespace: view.namespace.clone(),
            renderer: view.renderer.clone(),
            plugin_command: view.plugin_command.clone(),
            manual: view.sync_policy == "manual",
            prune: view.prune,
            self_heal: view.self_heal,
            adopt: view.adopt,
            prune_namespaces: view.prune_namespaces,
            prune_crds: view.prune_crds,
            force_conflicts: view.force_conflicts,
        }
    }

    /// Every field set, empty strings clearing what the spec leaves out,
    /// so the same request creates an app or makes an existing one match.
    pub fn request(&self, name: &str) -> AppRequest {
        AppRequest {
            name: Some(name.to_owned()),
            repo: Some(self.repo.clone()),
            path: Some(self.path.clone()),
            revision: Some(self.revision.clone().unwrap_or_default()),
            selector: Some(self.target.selector.clone()),
            group: Some(self.target.group.clone().unwrap_or_default()),
            namespace: Some(self.namespace.clone().unwrap_or_default()),
            renderer: Some(self.renderer.clone()),
            plugin_command: Some(self.plugin_command.clone().unwrap_or_default()),
            manual: Some(self.manual),
            prune: Some(self.prune),
            self_heal: Some(self.self_heal),
            adopt: Some(self.adopt),
            prune_namespaces: Some(self.prune_namespaces),
            prune_crds: Some(self.prune_crds),
            force_conflicts: Some(self.force_conflicts),
        }
    }
}

#[cfg(test)]
mod tests;
