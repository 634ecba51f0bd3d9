//! The flags `app create` and `app update` share (source, target,
//! renderer settings, ownership opt-ins) and how they become an app request.

use anyhow::Context as _;
use clap::Args;
use switchyard_hub::gitops::AppRequest;
use switchyard_hub::render::{DirectorySettings, JsonnetArg};
use switchyard_hub::store::HelmSettings;

/// Fields shared by `app create` and `app update`.
#[derive(Debug, Args)]
pub(crate) struct AppFields {
    /// Repo the manifests live in.
    #[arg(long, help_heading = "Source")]
    pub(super) repo: Option<String>,
    /// Directory inside the repo.
    #[arg(long, help_heading = "Source")]
    pub(super) path: Option<String>,
    /// Branch, tag or commit (default: the repo's branch).
    #[arg(long, help_heading = "Source")]
    pub(super) revision: Option<String>,
    /// Chart to deploy from a chart repository (`repo add --type helm`).
    #[arg(long, help_heading = "Source")]
    pub(super) chart: Option<String>,
    /// Chart version or range (`^6.0`, `~6.1`, `>=6, <7`, `6.1.0`;
    /// Helm's rules). Default: the latest stable version.
    #[arg(long, requires = "chart", help_heading = "Source")]
    pub(super) chart_version: Option<String>,
    /// Target clusters by label: K=V (repeatable, all must match) or any
    /// Kubernetes selector such as 'env in (prod,staging),!canary'.
    #[arg(long = "selector", help_heading = "Target")]
    pub(super) selectors: Vec<String>,
    /// Target the clusters of this cluster group (and of --selector, if
    /// given, both); an empty value stops targeting a group.
    #[arg(long, help_heading = "Target")]
    pub(super) group: Option<String>,
    /// Namespace for namespaced objects that name none.
    #[arg(long, help_heading = "Target")]
    pub(super) namespace: Option<String>,
    /// How manifests are produced.
    #[arg(long, value_parser = ["directory", "kustomize", "jsonnet", "plugin", "helm"], help_heading = "Source")]
    pub(super) renderer: Option<String>,
    /// Command the plugin renderer runs in a copy of the app's directory.
    #[arg(long, help_heading = "Source")]
    pub(super) plugin_command: Option<String>,
    /// YAML file with a list of rules in the shape of Argo CD's
    /// `ignoreDifferences` (group, kind, name, namespace, jsonPointers):
    /// fields the app leaves to others; they never count as drift and are
    /// applied with their live values. On update the file's rules replace
    /// the app's; an empty list (`[]`) removes them.
    #[arg(long, value_name = "FILE", help_heading = "Sync")]
    pub(super) ignore_differences_file: Option<std::path::PathBuf>,
    /// Leave every field this field manager owns on the live objects (their
    /// managedFields, e.g. kube-controller-manager) to it: never drift, and
    /// applied with its live values. Repeatable; on update the names given
    /// replace the app's, and an empty name (`--ignore-field-manager ''`)
    /// removes them.
    #[arg(
        long = "ignore-field-manager",
        value_name = "NAME",
        help_heading = "Sync"
    )]
    pub(super) ignore_field_managers: Vec<String>,
    /// Create the app's namespace when it is missing (the default); with
    /// `--create-namespace=false` a missing namespace fails the app and
    /// nothing is created, as Argo CD without CreateNamespace=true.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        help_heading = "Sync"
    )]
    pub(super) create_namespace: Option<bool>,
    /// Prune every object of the app that left Git last, once the app's
    /// other objects are healthy, as if each carried PruneLast=true
    /// (`--prune-last=false` turns it off).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        help_heading = "Sync"
    )]
    pub(super) prune_last: Option<bool>,
    #[command(flatten)]
    pub(super) helm: HelmFlags,
    /// Boxed: the largest group of flags, and most apps use none of them.
    #[command(flatten)]
    pub(super) directory: Box<DirectoryFlags>,
}

/// Settings of directory and jsonnet apps, as Argo CD's directory source
/// has them. On `app update`, each flag given replaces that setting (all
/// its values); an empty value (`--include ''`) clears it.
#[derive(Debug, Args)]
pub(crate) struct DirectoryFlags {
    /// Read subdirectories too (the default; Argo CD's is --no-recurse).
    #[arg(long, help_heading = "Directory", conflicts_with = "no_recurse")]
    pub(super) recurse: bool,
    /// Read only the files at the app's path, not its subdirectories.
    #[arg(long, help_heading = "Directory")]
    pub(super) no_recurse: bool,
    /// Render only files matching this glob, relative to the app's path
    /// (repeatable; `*` crosses `/`, braces allowed: '{a,b}.yaml').
    #[arg(long, value_name = "GLOB", help_heading = "Directory")]
    pub(super) include: Vec<String>,
    /// Skip files matching this glob (repeatable).
    #[arg(long, value_name = "GLOB", help_heading = "Directory")]
    pub(super) exclude: Vec<String>,
    /// A jsonnet top-level argument, a string (repeatable).
    #[arg(long, value_name = "NAME=VALUE", help_heading = "Directory")]
    pub(super) jsonnet_tla: Vec<String>,
    /// A jsonnet top-level argument, jsonnet code (repeatable).
    #[arg(long, value_name = "NAME=CODE", help_heading = "Directory")]
    pub(super) jsonnet_tla_code: Vec<String>,
    /// A jsonnet external variable (std.extVar), a string (repeatable).
    #[arg(long, value_name = "NAME=VALUE", help_heading = "Directory")]
    pub(super) jsonnet_ext_str: Vec<String>,
    /// A jsonnet external variable, jsonnet code (repeatable).
    #[arg(long, value_name = "NAME=CODE", help_heading = "Directory")]
    pub(super) jsonnet_ext_code: Vec<String>,
    /// A jsonnet library directory (-J), relative to the repository's root
    /// and read at the app's commit (repeatable).
    #[arg(long, value_name = "DIR", help_heading = "Directory")]
    pub(super) jsonnet_lib_path: Vec<String>,
}

/// A repeated flag's values: `None` when not given, empty for a single
/// empty value (which clears the setting).
fn given(values: &[String]) -> Option<Vec<String>> {
    match values {
        [] => None,
        [only] if only.is_empty() => Some(Vec::new()),
        _ => Some(values.to_vec()),
    }
}

impl DirectoryFlags {
    pub(super) fn given(&self) -> bool {
        self.recurse
            || self.no_recurse
            || !self.include.is_empty()
            || !self.exclude.is_empty()
            || !self.jsonnet_tla.is_empty()
            || !self.jsonnet_tla_code.is_empty()
            || !self.jsonnet_ext_str.is_empty()
            || !self.jsonnet_ext_code.is_empty()
            || !self.jsonnet_lib_path.is_empty()
    }

    /// `base` with the flags given applied.
    pub(super) fn apply(self, mut base: DirectorySettings) -> anyhow::Result<DirectorySettings> {
        if self.recurse || self.no_recurse {
            base.recurse = Some(self.recurse);
        }
        if let Some(v) = given(&self.include) {
            base.include = v;
        }
        if let Some(v) = given(&self.exclude) {
            base.exclude = v;
        }
        let args =
            |strings: &[String], code: &[String]| -> anyhow::Result<Option<Vec<JsonnetArg>>> {
                let (strings, code) = (given(strings), given(code));
                if strings.is_none() && code.is_none() {
                    return Ok(None);
                }
                let mut out = Vec::new();
                for (values, is_code) in [(strings, false), (code, true)] {
                    for v in values.unwrap_or_default() {
                        out.push(JsonnetArg::parse(&v, is_code).map_err(anyhow::Error::msg)?);
                    }
                }
                Ok(Some(out))
            };
        if let Some(v) = args(&self.jsonnet_tla, &self.jsonnet_tla_code)? {
            base.jsonnet.tlas = v;
        }
        if let Some(v) = args(&self.jsonnet_ext_str, &self.jsonnet_ext_code)? {
            base.jsonnet.ext_vars = v;
        }
        if let Some(v) = given(&self.jsonnet_lib_path) {
            base.jsonnet.libs = v;
        }
        Ok(base)
    }
}

/// The helm renderer's settings, as `helm template` takes them. On
/// `app update`, each flag given replaces that setting (all its values).
#[derive(Debug, Args)]
pub(crate) struct HelmFlags {
    /// Values file (repeatable, later wins): a path relative to the chart's
    /// directory (`..` may climb; a leading `/` starts at the repo's root),
    /// read at the same commit.
    #[arg(long = "values", value_name = "FILE")]
    pub(super) values: Vec<String>,
    /// KEY=VALUE as `helm --set` takes it (repeatable), applied last.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(super) set: Vec<String>,
    /// `.Release.Name` (default: the app's name).
    #[arg(long)]
    pub(super) release_name: Option<String>,
    /// SELECTOR=FILE: a values file for the clusters the label selector
    /// matches (repeatable), applied after --values, e.g. 'env=prod=values-prod.yaml'.
    #[arg(long = "values-for", value_name = "SELECTOR=FILE")]
    pub(super) values_for: Vec<String>,
}

impl HelmFlags {
    pub(super) fn given(&self) -> bool {
        !self.values.is_empty()
            || !self.set.is_empty()
            || self.release_name.is_some()
            || !self.values_for.is_empty()
    }

    /// `base` with the flags given applied.
    pub(super) fn apply(self, mut base: HelmSettings) -> anyhow::Result<HelmSettings> {
        if !self.values.is_empty() {
            base.values_files = self.values;
        }
        if !self.set.is_empty() {
            base.set = self.set;
        }
        if let Some(r) = self.release_name {
            base.release_name = Some(r).filter(|r| !r.is_empty());
        }
        if !self.values_for.is_empty() {
            base.values_for = self
                .values_for
                .iter()
                .map(|v| switchyard_hub::gitops::parse_values_for(v))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?;
        }
        Ok(base)
    }
}

/// What the app may do to objects it did not create (docs/SECURITY.md,
/// "What the agent deletes"); shared by `app create` and `app update`.
#[derive(Debug, Args)]
pub(crate) struct OwnershipFlags {
    /// Write to objects that exist already and belong to no app; adopted
    /// objects are still never deleted.
    #[arg(long, help_heading = "Ownership", conflicts_with = "no_adopt")]
    pub(super) adopt: bool,
    /// Turn --adopt off (app update).
    #[arg(long, help_heading = "Ownership")]
    pub(super) no_adopt: bool,
    /// Let prune and app deletion delete Namespaces the app created (and
    /// with them everything inside).
    #[arg(
        long,
        help_heading = "Ownership",
        conflicts_with = "no_prune_namespaces"
    )]
    pub(super) prune_namespaces: bool,
    /// Turn --prune-namespaces off (app update).
    #[arg(long, help_heading = "Ownership")]
    pub(super) no_prune_namespaces: bool,
    /// Let prune and app deletion delete CustomResourceDefinitions the app
    /// created (and with them every object of their kinds).
    #[arg(long, help_heading = "Ownership", conflicts_with = "no_prune_crds")]
    pub(super) prune_crds: bool,
    /// Turn --prune-crds off (app update).
    #[arg(long, help_heading = "Ownership")]
    pub(super) no_prune_crds: bool,
    /// Take over fields other field managers own instead of reporting the
    /// conflict.
    #[arg(
        long,
        help_heading = "Ownership",
        conflicts_with = "no_force_conflicts"
    )]
    pub(super) force_conflicts: bool,
    /// Turn --force-conflicts off (app update).
    #[arg(long, help_heading = "Ownership")]
    pub(super) no_force_conflicts: bool,
}

impl OwnershipFlags {
    /// Set what was given; leave the rest to the hub (off on create,
    /// unchanged on update).
    pub(super) fn fill(&self, request: &mut AppRequest) {
        request.adopt = either(self.adopt, self.no_adopt);
        request.prune_namespaces = either(self.prune_namespaces, self.no_prune_namespaces);
        request.prune_crds = either(self.prune_crds, self.no_prune_crds);
        request.force_conflicts = either(self.force_conflicts, self.no_force_conflicts);
    }
}

impl AppFields {
    /// The request, with the helm flags applied to `helm` (the app's
    /// current settings on update).
    pub(super) fn into_request(
        self,
        name: Option<String>,
        helm: Option<HelmSettings>,
        directory: Option<DirectorySettings>,
        current_rules: Vec<switchyard_hub::store::IgnoreDifference>,
    ) -> anyhow::Result<AppRequest> {
        let helm = if self.helm.given() {
            Some(self.helm.apply(helm.unwrap_or_default())?)
        } else {
            None
        };
        let directory = if self.directory.given() {
            Some((*self.directory).apply(directory.unwrap_or_default())?)
        } else {
            None
        };
        let ignore_differences = match &self.ignore_differences_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let rules: Option<Vec<switchyard_hub::store::IgnoreDifference>> =
                    serde_saphyr::from_str(&text).with_context(|| {
                        format!(
                            "{}: expected a list of ignoreDifferences rules (group, kind, name, namespace, jsonPointers)",
                            path.display()
                        )
                    })?;
                Some(rules.unwrap_or_default())
            }
        };
        let ignore_differences = if self.ignore_field_managers.is_empty() {
            ignore_differences
        } else {
            Some(with_field_managers(
                ignore_differences.unwrap_or(current_rules),
                &self.ignore_field_managers,
            ))
        };
        Ok(AppRequest {
            name,
            repo: self.repo,
            path: self.path,
            revision: self.revision,
            chart: self.chart,
            chart_version: self.chart_version,
            selector: (!self.selectors.is_empty()).then(|| self.selectors.join(",")),
            group: self.group,
            namespace: self.namespace,
            renderer: self.renderer,
            plugin_command: self.plugin_command,
            helm,
            directory,
            ignore_differences,
            create_namespace: self.create_namespace,
            prune_last: self.prune_last,
            ..AppRequest::default()
        })
    }

    /// Whether an update needs the app's current ignore rules.
    pub(super) fn changes_field_managers(&self) -> bool {
        !self.ignore_field_managers.is_empty() && self.ignore_differences_file.is_none()
    }
}

/// `rules` with the rule `--ignore-field-manager` writes (every object,
/// fields of these managers only) replaced by one naming `managers`; none
/// when every name is empty.
fn with_field_managers(
    rules: Vec<switchyard_hub::store::IgnoreDifference>,
    managers: &[String],
) -> Vec<switchyard_hub::store::IgnoreDifference> {
    let flag_rule = |r: &switchyard_hub::store::IgnoreDifference| {
        r.group == "*"
            && r.kind == "*"
            && r.name.is_none()
            && r.namespace.is_none()
            && r.json_pointers.is_empty()
            && r.jq_path_expressions.is_empty()
    };
    let mut rules: Vec<_> = rules.into_iter().filter(|r| !flag_rule(r)).collect();
    let managers: Vec<String> = managers
        .iter()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    if !managers.is_empty() {
        rules.push(switchyard_hub::store::IgnoreDifference {
            group: "*".into(),
            kind: "*".into(),
            managed_fields_managers: managers,
            ..Default::default()
        });
    }
    rules
}

/// `--x` / `--no-x`: true, false, or left as it is.
pub(super) fn either(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}
