//! Parsing, validation and the canonical form of declarative documents.

use super::*;
use std::collections::BTreeSet;

const GOOD: &str = "\
# the fleet's config
apiVersion: switchyard.dev/v1
kind: ClusterGroup
metadata:
  name: edge
spec:
  selector: tier = edge, region in (eu, us)
---
apiVersion: switchyard.dev/v1
kind: Repo
metadata:
  name: config
spec:
  url: https://git.example.com/fleet/config.git
  interval: 60s
  username: bot
  passwordFile: /etc/switchyard/git-token
---
apiVersion: switchyard.dev/v1
kind: App
metadata:
  name: web
spec:
  repo: config
  path: ./apps//web/
  target:
    group: edge
    selector: env=prod
  prune: true
";

fn parse_ok(text: &str) -> Vec<Sourced> {
    let (docs, problems) = parse("f.yaml", text);
    assert!(problems.is_empty(), "{problems:?}");
    docs
}

fn problems(text: &str) -> Vec<String> {
    let (_, problems) = parse("f.yaml", text);
    problems.iter().map(ToString::to_string).collect()
}

#[test]
fn documents_are_read_in_canonical_form_with_defaults() {
    let docs = parse_ok(GOOD);
    let kinds: Vec<Kind> = docs.iter().map(|d| d.document.kind).collect();
    assert_eq!(kinds, [Kind::ClusterGroup, Kind::Repo, Kind::App]);
    assert_eq!(
        docs[0].document.spec,
        Spec::ClusterGroup(GroupSpec {
            selector: "region in (eu,us),tier=edge".into()
        })
    );
    assert_eq!(
        docs[1].document.spec,
        Spec::Repo(RepoSpec {
            url: "https://git.example.com/fleet/config.git".into(),
            repo_type: None,
            branch: "main".into(),
            interval: "1m".into(),
            username: Some("bot".into()),
            password_file: Some("/etc/switchyard/git-token".into()),
            ca_file: None,
            plain_http: false,
            webhook_secret_file: None,
        })
    );
    let Spec::App(app) = &docs[2].document.spec else {
        panic!("not an app")
    };
    assert_eq!(app.path, "apps/web");
    assert_eq!(app.target.group.as_deref(), Some("edge"));
    assert_eq!(app.renderer, "directory");
    assert!(app.prune && !app.manual && !app.self_heal);
    assert_eq!(
        docs.iter()
            .map(|d| (d.origin.document, d.origin.line))
            .collect::<Vec<_>>(),
        [(1, 2), (2, 9), (3, 19)]
    );
}

#[test]
fn exported_documents_read_back_equal_in_yaml_and_json() {
    let docs: Vec<Document> = parse_ok(GOOD).into_iter().map(|d| d.document).collect();
    let yaml: String = docs
        .iter()
        .map(|d| serde_saphyr::to_string(d).unwrap())
        .collect::<Vec<_>>()
        .join("---\n");
    let again: Vec<Document> = parse_ok(&yaml).into_iter().map(|d| d.document).collect();
    assert_eq!(again, docs, "{yaml}");
    let json = serde_json::to_string_pretty(&docs).unwrap();
    let again: Vec<Sourced> = parse_ok(&json);
    assert_eq!(
        again.iter().map(|d| d.origin.document).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let again: Vec<Document> = again.into_iter().map(|d| d.document).collect();
    assert_eq!(again, docs, "{json}");
}

const CHARTS: &str = "\
apiVersion: switchyard.dev/v1
kind: Repo
metadata:
  name: charts
spec:
  url: https://charts.example.com
  type: helm
---
apiVersion: switchyard.dev/v1
kind: App
metadata:
  name: podinfo
spec:
  repo: charts
  chart: podinfo
  chartVersion: ^6.0
  helm:
    set: [replicaCount=2]
";

#[test]
fn chart_repositories_and_their_apps_read_back_equal() {
    let docs: Vec<Document> = parse_ok(CHARTS).into_iter().map(|d| d.document).collect();
    let Spec::Repo(repo) = &docs[0].spec else {
        panic!("not a repo")
    };
    assert_eq!(repo.repo_type.as_deref(), Some("helm"));
    assert_eq!(repo.branch, "");
    let Spec::App(app) = &docs[1].spec else {
        panic!("not an app")
    };
    assert_eq!(app.chart.as_deref(), Some("podinfo"));
    assert_eq!(app.chart_version.as_deref(), Some("^6.0"));
    assert_eq!((app.path.as_str(), app.renderer.as_str()), (".", "helm"));
    let yaml: String = docs
        .iter()
        .map(|d| serde_saphyr::to_string(d).unwrap())
        .collect::<Vec<_>>()
        .join("---\n");
    assert!(
        yaml.contains("type: helm") && !yaml.contains("branch"),
        "{yaml}"
    );
    let again: Vec<Document> = parse_ok(&yaml).into_iter().map(|d| d.document).collect();
    assert_eq!(again, docs, "{yaml}");
    // The API request carries them.
    let request = app.request("podinfo");
    assert_eq!(request.chart.as_deref(), Some("podinfo"));
    assert_eq!(request.chart_version.as_deref(), Some("^6.0"));
    assert_eq!(repo.request("charts").branch, None);
}

#[test]
fn chart_fields_are_checked() {
    let found = problems(
        &CHARTS
            .replace("^6.0", "^^6")
            .replace("type: helm", "type: helm\n  branch: main"),
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("spec.branch: a chart repository (type helm) has none"),
        "{found:?}"
    );
    assert!(found[1].contains("spec.chartVersion \"^^6\""), "{found:?}");
}

#[test]
fn unknown_fields_are_refused_with_document_and_line() {
    let text = GOOD.replace("  prune: true", "  prune: true\n  sefHeal: true");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("f.yaml: document 3, line 30: unknown field `sefHeal`"),
        "{found:?}"
    );
}

#[test]
fn fields_of_another_kind_and_bad_values_are_each_reported() {
    let text = "\
apiVersion: switchyard.dev/v1
kind: App
metadata:
  name: web
spec:
  repo: config
  path: ../etc
  url: https://x/y.git
  target:
    selector: env in (prod
  renderer: plugin
---
apiVersion: switchyard.dev/v2
kind: Repo
metadata:
  name: bad name
spec:
  url: ftp://x
  interval: soon
  passwordFile: token.txt
";
    let found = problems(text);
    let want = [
        "f.yaml: document 1, line 8: spec.url is not a field of App",
        "f.yaml: document 1, line 7: spec.path: \"../etc\" may not contain '..'",
        "f.yaml: document 1, line 10: spec.target.selector: \"env in (prod\" is not a label selector",
        "f.yaml: document 1, line 11: spec.renderer: the plugin renderer needs spec.pluginCommand",
        "f.yaml: document 2, line 13: apiVersion \"switchyard.dev/v2\" is not supported",
        "f.yaml: document 2, line 16: metadata.name: repo name \"bad name\": a name is a DNS label",
        "f.yaml: document 2, line 18: spec.url: \"ftp://x\": use an https://",
        "f.yaml: document 2, line 19: spec.interval: \"soon\" is not a duration",
        "f.yaml: document 2, line 20: spec.username and spec.passwordFile go together",
        "f.yaml: document 2, line 20: spec.passwordFile \"token.txt\" must be an absolute path",
    ];
    for w in want {
        assert!(
            found.iter().any(|f| f.starts_with(w)),
            "missing {w:?} in\n{}",
            found.join("\n")
        );
    }
    assert_eq!(found.len(), want.len(), "{}", found.join("\n"));
}

#[test]
fn wrong_types_and_broken_yaml_name_their_line() {
    let text = GOOD.replace("  prune: true", "  prune: sometimes");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("f.yaml: document 3, line 29: "),
        "{found:?}"
    );
    let found = problems("apiVersion: switchyard.dev/v1\nkind: [Repo\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("f.yaml: document 1, line "),
        "{found:?}"
    );
}

#[test]
fn references_must_exist_on_the_hub_or_in_the_files_and_names_once() {
    let docs = parse_ok(GOOD);
    let none = BTreeSet::new();
    assert!(check_references(&docs, &none, &none).is_empty());
    let app_only: Vec<Sourced> = docs[2..].to_vec();
    let found: Vec<String> = check_references(&app_only, &none, &none)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "f.yaml: document 3, line 24: spec.repo: repo config is neither on the hub nor in these files",
            "f.yaml: document 3, line 27: spec.target.group: cluster group edge is neither on the hub nor in these files",
        ]
    );
    let on_hub: BTreeSet<String> = ["config".to_owned(), "edge".to_owned()].into();
    assert!(check_references(&app_only, &on_hub, &on_hub).is_empty());
    let twice: Vec<Sourced> = docs.iter().chain(&docs[1..2]).cloned().collect();
    let found = check_references(&twice, &none, &none);
    assert_eq!(found.len(), 1);
    assert!(
        found[0]
            .message
            .contains("Repo config is also defined at f.yaml: document 2, line 9")
    );
}

#[test]
fn kinds_on_the_command_line() {
    assert_eq!(Kind::from_cli("repos"), Some(Kind::Repo));
    assert_eq!(Kind::from_cli("App"), Some(Kind::App));
    assert_eq!(Kind::from_cli("clustergroups"), Some(Kind::ClusterGroup));
    assert_eq!(Kind::from_cli("group"), Some(Kind::ClusterGroup));
    assert_eq!(Kind::from_cli("cluster"), None);
}

#[test]
fn a_malformed_document_does_not_hide_the_others_problems() {
    let text = format!(
        "{}---\n{}",
        GOOD.replace("  selector: tier = edge", "  selectr: tier = edge"),
        GOOD.replace("  prune: true", "  prune: maybe")
    );
    let found = problems(&text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("f.yaml: document 1, line 7: unknown field `selectr`"),
        "{found:?}"
    );
    // The second copy starts at line 31: its `prune` is on line 59, in document 6.
    assert!(
        found[1].starts_with("f.yaml: document 6, line 59: "),
        "{found:?}"
    );
}

#[test]
fn plain_http_oci_registries_read_back_and_are_checked() {
    let text = "apiVersion: switchyard.dev/v1
kind: Repo
metadata: {name: local}
spec:
  url: oci://127.0.0.1:5000/charts
  type: oci
  plainHttp: true
";
    let docs: Vec<Document> = parse_ok(text).into_iter().map(|d| d.document).collect();
    let Spec::Repo(repo) = &docs[0].spec else {
        panic!("not a repo")
    };
    assert!(repo.plain_http);
    assert!(repo.request("local").plain_http);
    let yaml = serde_saphyr::to_string(&docs[0]).unwrap();
    assert!(yaml.contains("plainHttp: true"), "{yaml}");
    assert_eq!(
        parse_ok(&yaml)
            .into_iter()
            .map(|d| d.document)
            .collect::<Vec<_>>(),
        docs
    );
    // Not written when off.
    let https = parse_ok(&text.replace("  plainHttp: true\n", ""));
    let yaml = serde_saphyr::to_string(&https[0].document).unwrap();
    assert!(!yaml.contains("plainHttp"), "{yaml}");
    // Only for OCI, and a password only to loopback.
    let found = problems(
        &text
            .replace("type: oci", "type: helm")
            .replace("oci://", "http://"),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("spec.plainHttp: --plain-http is for OCI registries"),
        "{found:?}"
    );
    let found = problems(
        &text
            .replace("127.0.0.1:5000", "registry.example.com")
            .replace(
                "  plainHttp: true\n",
                "  plainHttp: true\n  username: bot\n  passwordFile: /etc/pw\n",
            ),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("password over plain HTTP"), "{found:?}");
}
