//! `switchyard apply -f` and `switchyard export`: the hub's repos, apps and
//! cluster groups as files, kubectl-style. Parsing and validation live in
//! `switchyard_hub::declarative`; this is the reading, the HTTP and the
//! printing around it.

use super::Target;
use super::client::AdminClient;
use anyhow::{Context, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use switchyard_hub::declarative::{
    self, AppSpec, Document, GroupSpec, Kind, Problem, RepoSpec, Sourced, Spec,
};
use switchyard_hub::gitops::{AppView, GroupView, RepoView};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    Yaml,
    Json,
}

/// Read `-f` arguments: a file, a directory (its `*.yaml` and `*.yml`
/// files, sorted by name, not recursive) or `-` for stdin.
fn read_inputs(files: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut inputs = Vec::new();
    for file in files {
        if file == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading stdin")?;
            inputs.push(("<stdin>".to_owned(), text));
            continue;
        }
        let path = Path::new(file);
        if path.is_dir() {
            let mut found: Vec<_> = std::fs::read_dir(path)
                .with_context(|| format!("reading directory {file}"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("{file} holds no *.yaml or *.yml file");
            }
            for p in found {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()))?;
                inputs.push((p.display().to_string(), text));
            }
        } else {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {file}"))?;
            inputs.push((file.clone(), text));
        }
    }
    Ok(inputs)
}

/// What the hub has now, by kind and name.
struct Current {
    repos: BTreeMap<String, RepoSpec>,
    groups: BTreeMap<String, GroupSpec>,
    apps: BTreeMap<String, AppSpec>,
}

impl Current {
    async fn load(client: &AdminClient) -> anyhow::Result<Self> {
        let repos: Vec<RepoView> = client.get("/repos").await?;
        let groups: Vec<GroupView> = client.get("/groups").await?;
        let apps: Vec<AppView> = client.get("/apps").await?;
        Ok(Self {
            repos: repos
                .iter()
                .map(|r| (r.name.clone(), RepoSpec::from_view(r)))
                .collect(),
            groups: groups
                .iter()
                .map(|g| (g.name.clone(), GroupSpec::from_view(g)))
                .collect(),
            apps: apps
                .iter()
                .map(|a| (a.name.clone(), AppSpec::from_view(a)))
                .collect(),
        })
    }

    /// The hub's spec of the object a document names, if it exists.
    fn spec_of(&self, document: &Document) -> Option<Spec> {
        let name = document.name();
        match document.kind {
            Kind::Repo => self.repos.get(name).cloned().map(Spec::Repo),
            Kind::ClusterGroup => self.groups.get(name).cloned().map(Spec::ClusterGroup),
            Kind::App => self.apps.get(name).cloned().map(Spec::App),
        }
    }

    fn documents(&self) -> Vec<Document> {
        let groups = self
            .groups
            .iter()
            .map(|(n, s)| Document::new(n, Spec::ClusterGroup(s.clone())));
        let repos = self
            .repos
            .iter()
            .map(|(n, s)| Document::new(n, Spec::Repo(s.clone())));
        let apps = self
            .apps
            .iter()
            .map(|(n, s)| Document::new(n, Spec::App(s.clone())));
        groups.chain(repos).chain(apps).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Configure,
    Unchanged,
}

impl Action {
    fn past(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Configure => "configured",
            Action::Unchanged => "unchanged",
        }
    }
}

fn report(problems: &[Problem]) -> anyhow::Error {
    for p in problems {
        eprintln!("{p}");
    }
    let n = problems.len();
    anyhow::anyhow!(
        "{n} problem{} found; nothing was applied",
        if n == 1 { "" } else { "s" }
    )
}

/// `switchyard apply -f FILE|DIR|- …`: make the hub match the documents.
/// Every document is checked (values, references, and the files repos
/// name on the hub's machine) before anything is changed.
pub(crate) async fn apply(files: &[String], dry_run: bool, target: &Target) -> anyhow::Result<()> {
    apply_texts(read_inputs(files)?, &files.join(", "), dry_run, target).await
}

/// `apply` of documents already read: (label, text) pairs; `what` names
/// them when there are none.
pub(crate) async fn apply_texts(
    inputs: Vec<(String, String)>,
    what: &str,
    dry_run: bool,
    target: &Target,
) -> anyhow::Result<()> {
    let mut documents: Vec<Sourced> = Vec::new();
    let mut problems = Vec::new();
    for (label, text) in inputs {
        let (found, wrong) = declarative::parse(&label, &text);
        documents.extend(found);
        problems.extend(wrong);
    }
    if documents.is_empty() && problems.is_empty() {
        bail!("no documents found in {what}");
    }
    let client = AdminClient::discover(target)?;
    let current = Current::load(&client).await?;
    let on_hub = |names: Vec<&String>| names.into_iter().cloned().collect::<BTreeSet<_>>();
    problems.extend(declarative::check_references(
        &documents,
        &on_hub(current.repos.keys().collect()),
        &on_hub(current.groups.keys().collect()),
    ));
    if !problems.is_empty() {
        return Err(report(&problems));
    }
    // Groups and repos before the apps that name them; file order within a kind.
    documents.sort_by_key(|d| d.document.kind);
    let plan: Vec<(&Sourced, Action)> = documents
        .iter()
        .map(|d| {
            let action = match current.spec_of(&d.document) {
                None => Action::Create,
                Some(spec) if spec == d.document.spec => Action::Unchanged,
                Some(_) => Action::Configure,
            };
            (d, action)
        })
        .collect();
    // Only the hub can tell whether the files a repo names exist on its
    // machine: ask it, for every repo about to change, before changing any.
    for (d, action) in &plan {
        if let (Spec::Repo(repo), Action::Create | Action::Configure) = (&d.document.spec, action) {
            let request = repo.request(d.document.name());
            let checked: anyhow::Result<RepoView> =
                client.post("/repos?dry_run=true", &request).await;
            if let Err(e) = checked {
                problems.push(Problem {
                    origin: d.origin.clone(),
                    message: format!("repo {}: {e:#}", d.document.name()),
                });
            }
        }
    }
    if !problems.is_empty() {
        return Err(report(&problems));
    }
    let suffix = if dry_run { " (dry run)" } else { "" };
    for (d, action) in plan {
        let name = d.document.name();
        if !dry_run {
            change(&client, &d.document, action)
                .await
                .with_context(|| format!("{} {} ({})", d.document.kind, name, d.origin))?;
        }
        println!(
            "{}/{name} {}{suffix}",
            d.document.kind.noun(),
            action.past()
        );
    }
    Ok(())
}

async fn change(client: &AdminClient, document: &Document, action: Action) -> anyhow::Result<()> {
    let name = document.name();
    match (&document.spec, action) {
        (_, Action::Unchanged) => {}
        (Spec::Repo(spec), Action::Create) => {
            let _: RepoView = client.post("/repos", &spec.request(name)).await?;
        }
        (Spec::Repo(spec), Action::Configure) => {
            let _: RepoView = client
                .put(&format!("/repos/{name}"), &spec.request(name))
                .await?;
        }
        (Spec::ClusterGroup(spec), Action::Create) => {
            let _: GroupView = client.post("/groups", &spec.request(name)).await?;
        }
        (Spec::ClusterGroup(spec), Action::Configure) => {
            let _: GroupView = client
                .put(&format!("/groups/{name}"), &spec.request(name))
                .await?;
        }
        (Spec::App(spec), Action::Create) => {
            let _: AppView = client.post("/apps", &spec.request(name)).await?;
        }
        (Spec::App(spec), Action::Configure) => {
            let _: AppView = client
                .patch(&format!("/apps/{name}"), &spec.request(name))
                .await?;
        }
    }
    Ok(())
}

/// `switchyard export [-o yaml|json] [KIND…]`: what `apply` would need to
/// recreate the hub's repos, groups and apps (never a secret: repos name
/// the files holding their credentials).
pub(crate) async fn export(
    kinds: &[String],
    format: ExportFormat,
    target: &Target,
) -> anyhow::Result<()> {
    let mut wanted = BTreeSet::new();
    for k in kinds {
        match Kind::from_cli(k) {
            Some(kind) => {
                wanted.insert(kind);
            }
            None => bail!("unknown kind {k:?}: use repo, app or clustergroup"),
        }
    }
    let client = AdminClient::discover(target)?;
    let documents: Vec<Document> = Current::load(&client)
        .await?
        .documents()
        .into_iter()
        .filter(|d| wanted.is_empty() || wanted.contains(&d.kind))
        .collect();
    match format {
        ExportFormat::Json => println!("{}", serde_json::to_string_pretty(&documents)?),
        ExportFormat::Yaml => {
            let texts = documents
                .iter()
                .map(serde_saphyr::to_string)
                .collect::<Result<Vec<_>, _>>()?;
            print!("{}", texts.join("---\n"));
        }
    }
    Ok(())
}
