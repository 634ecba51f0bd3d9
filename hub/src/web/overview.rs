//! `/`: the fleet at a glance: clusters by connection state, agent and
//! Kubernetes versions, label facets, and a heat map of apps × cluster
//! groups (counts of synced and healthy pairs, in words as well as colour).

use super::layout::badge;
use super::{Error, WebState, signed_in};
use crate::fleet::ClusterView;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use maud::{Markup, html};
use std::collections::{BTreeMap, HashMap};

/// How many values of one label the facets show.
const FACET_VALUES: usize = 12;

/// Counts by a key, most common first.
fn tally<'a>(items: impl Iterator<Item = &'a str>) -> Vec<(String, usize)> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> =
        counts.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

/// One heat map cell: of `pairs` (app, cluster) pairs, how many are synced
/// and how many healthy.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cell {
    pub pairs: usize,
    pub synced: usize,
    pub healthy: usize,
    /// Pairs whose health is `Degraded` or `Missing`.
    pub degraded: usize,
}

impl Cell {
    fn add(&mut self, sync: &str, health: &str) {
        self.pairs += 1;
        self.synced += usize::from(sync == "Synced");
        self.healthy += usize::from(health == "Healthy");
        self.degraded += usize::from(health == "Degraded" || health == "Missing");
    }

    /// The cell's word: degraded if any pair is, healthy if all pairs are
    /// synced and healthy, else progressing (on its way, or not reported).
    fn word(&self) -> &'static str {
        if self.pairs == 0 {
            "-"
        } else if self.degraded > 0 {
            "Degraded"
        } else if self.synced == self.pairs && self.healthy == self.pairs {
            "Healthy"
        } else {
            "Progressing"
        }
    }
}

/// The heat map: app → group → cell, filled one (app, cluster) pair at a
/// time. Clusters in no group count under `(no group)`.
pub(super) struct HeatMap<'g> {
    group_of: HashMap<&'g str, Vec<&'g str>>,
    pub cells: BTreeMap<String, BTreeMap<String, Cell>>,
}

impl<'g> HeatMap<'g> {
    pub(super) fn new(groups: &'g [(String, Vec<String>)]) -> Self {
        let mut group_of: HashMap<&str, Vec<&str>> = HashMap::new();
        for (group, clusters) in groups {
            for cluster in clusters {
                group_of.entry(cluster).or_default().push(group);
            }
        }
        Self {
            group_of,
            cells: BTreeMap::new(),
        }
    }

    pub(super) fn add(&mut self, cluster: &str, app: &str, sync: &str, health: &str) {
        let cells = match self.cells.get_mut(app) {
            Some(cells) => cells,
            None => self.cells.entry(app.to_owned()).or_default(),
        };
        // Called once per (app, cluster) pair of the fleet: look up before
        // allocating a key.
        let mut count = |group: &str| match cells.get_mut(group) {
            Some(cell) => cell.add(sync, health),
            None => cells.entry(group.to_owned()).or_default().add(sync, health),
        };
        match self.group_of.get(cluster) {
            Some(groups) => groups.iter().for_each(|group| count(group)),
            None => count("(no group)"),
        }
    }
}

/// Heat map cells per app and group.
type Cells = BTreeMap<String, BTreeMap<String, Cell>>;

/// Groups with their clusters, as the heat map groups them.
type Groups = Vec<(String, Vec<String>)>;

/// The last overview's heat map, with the pair-state generation and the
/// groups it was computed from. Folding a million pairs took 200–450 ms at
/// 10,000 clusters × 100 apps (BENCHMARKS.md, "Web UI at fleet scale"); in
/// a steady fleet the pairs do not change between page loads.
#[derive(Default)]
pub struct HeatMapMemo {
    last: std::sync::Mutex<Option<(u64, Groups, Cells)>>,
}

impl HeatMapMemo {
    /// The cells computed at `generation` from `groups`, if those are the
    /// last ones.
    fn get(&self, generation: u64, groups: &[(String, Vec<String>)]) -> Option<Cells> {
        let last = self.last.lock().expect("heat map memo lock");
        match &*last {
            Some((at, from, cells)) if *at == generation && from.as_slice() == groups => {
                Some(cells.clone())
            }
            _ => None,
        }
    }

    fn put(&self, generation: u64, groups: Groups, cells: Cells) {
        *self.last.lock().expect("heat map memo lock") = Some((generation, groups, cells));
    }
}

fn facets(clusters: &[ClusterView]) -> BTreeMap<String, Vec<(String, usize)>> {
    let mut by_key: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for cluster in clusters {
        for (k, v) in &cluster.labels {
            by_key.entry(k.clone()).or_default().push(v);
        }
    }
    by_key
        .into_iter()
        .map(|(k, values)| (k, tally(values.into_iter())))
        .collect()
}

/// `GET /`.
pub(super) async fn page(State(state): State<WebState>, headers: HeaderMap, uri: Uri) -> Response {
    let signed = match signed_in(&state, &headers, &uri) {
        Ok(s) => s,
        Err(redirect) => return *redirect,
    };
    super::layout::blocking_page("Fleet", "/", &signed, move || body(&state)).await
}

fn body(state: &WebState) -> Result<Markup, Error> {
    let clusters = state.fleet.clusters()?;
    let groups: Vec<(String, Vec<String>)> = state
        .gitops
        .groups()?
        .into_iter()
        .map(|g| (g.name, g.clusters))
        .collect();
    let connected = clusters.iter().filter(|c| c.connected).count();
    let pending = clusters.iter().filter(|c| c.state == "pending").count();
    let disconnected = clusters.len() - connected - pending;
    let agents = tally(clusters.iter().filter_map(|c| c.agent_version.as_deref()));
    let kubes = tally(
        clusters
            .iter()
            .filter_map(|c| c.kubernetes_version.as_deref()),
    );
    let facets = facets(&clusters);
    // From the fleet gauges' in-memory pair states: no pass over the
    // store's reports, no copy of a million rows; and computed again only
    // when a pair's state or the groups changed since the last overview
    // (the generation is read before the fold: a change meanwhile makes
    // the next overview fold again, never keeps an older map).
    let generation = state.fleet.pair_states_generation()?;
    let map = match state.heat_map.get(generation, &groups) {
        Some(cells) => cells,
        None => {
            let cells = state
                .fleet
                .fold_pairs(HeatMap::new(&groups), |map, cluster, pair| {
                    map.add(cluster, &pair.app, &pair.sync, &pair.health)
                })?
                .cells;
            state
                .heat_map
                .put(generation, groups.clone(), cells.clone());
            cells
        }
    };
    let mut columns: Vec<String> = groups.iter().map(|(g, _)| g.clone()).collect();
    if map.values().any(|cells| cells.contains_key("(no group)")) {
        columns.push("(no group)".into());
    }
    Ok(html! {
        section.cards aria-label="Clusters by connection state" {
            a.card href="/clusters?state=connected" {
                span.num #count-connected { (connected) } " " (badge("connected"))
            }
            a.card href="/clusters?state=disconnected" {
                span.num #count-disconnected { (disconnected) } " " (badge("disconnected"))
            }
            a.card href="/clusters?state=pending" {
                span.num { (pending) } " " (badge("pending")) " (not enrolled)"
            }
            div.card { span.num { (clusters.len()) } " clusters in all" }
        }
        div.columns {
            section {
                h2 { "Agent versions" }
                (counts_table("Agent version", &agents))
            }
            section {
                h2 { "Kubernetes versions" }
                (counts_table("Kubernetes version", &kubes))
            }
            section {
                h2 { "Labels" }
                @if facets.is_empty() { p.muted { "No cluster has labels." } }
                @for (key, values) in &facets {
                    h3 { code { (key) } }
                    ul.facets {
                        @for (value, n) in values.iter().take(FACET_VALUES) {
                            li { a href={ "/clusters?selector=" (super::layout::query_escape(&format!("{key}={value}"))) } { (value) } " " span.muted { "(" (n) ")" } }
                        }
                        @if values.len() > FACET_VALUES { li.muted { "and " (values.len() - FACET_VALUES) " more" } }
                    }
                }
            }
        }
        section {
            h2 { "Apps × cluster groups" }
            p.hint { "Each cell: synced / healthy / all (app, cluster) pairs. Degraded: at least one pair is degraded or missing; Progressing: not all synced and healthy yet." }
            @if map.is_empty() {
                p.muted { "No app is assigned to any cluster yet." }
            } @else {
                // Focusable, so a keyboard can scroll a table wider than the screen.
                div.scroll tabindex="0" role="region" aria-label="Apps × cluster groups" {
                    table.heat {
                        thead { tr { th scope="col" { "App" } @for c in &columns { th scope="col" { (c) } } } }
                        tbody {
                            @for (app, cells) in &map {
                                tr {
                                    th scope="row" { a href={ "/apps/" (app) } { (app) } }
                                    @for c in &columns {
                                        @let cell = cells.get(c).copied().unwrap_or_default();
                                        td class={ "cell " (cell.word()) } {
                                            @if cell.pairs > 0 {
                                                (badge(cell.word()))
                                                " " (cell.synced) " / " (cell.healthy) " / " (cell.pairs)
                                            } @else { span.muted { "-" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn counts_table(what: &str, counts: &[(String, usize)]) -> Markup {
    html! {
        @if counts.is_empty() { p.muted { "None reported yet." } }
        @else {
            table {
                thead { tr { th scope="col" { (what) } th scope="col" { "Clusters" } } }
                tbody { @for (v, n) in counts { tr { td { code { (v) } } td { (n) } } } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heat_map_is_reused_only_at_the_same_generation_and_groups() {
        let memo = HeatMapMemo::default();
        let groups = vec![("eu".to_owned(), vec!["a".to_owned()])];
        assert_eq!(memo.get(1, &groups), None);
        let mut cells = Cells::new();
        cells.entry("web".into()).or_default().insert(
            "eu".into(),
            Cell {
                pairs: 1,
                ..Cell::default()
            },
        );
        memo.put(1, groups.clone(), cells.clone());
        assert_eq!(memo.get(1, &groups), Some(cells));
        assert_eq!(memo.get(2, &groups), None);
        let moved = vec![("eu".to_owned(), vec!["b".to_owned()])];
        assert_eq!(memo.get(1, &moved), None);
    }

    #[test]
    fn the_heat_map_counts_pairs_per_group() {
        let groups = vec![
            ("prod".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
            ("eu".to_owned(), vec!["a".to_owned()]),
        ];
        let mut map = HeatMap::new(&groups);
        map.add("a", "web", "Synced", "Healthy");
        map.add("b", "web", "OutOfSync", "Healthy");
        map.add("z", "web", "Synced", "Healthy");
        map.add("a", "db", "Synced", "Healthy");
        map.add("b", "db", "Synced", "Degraded");
        let map = map.cells;
        let web = &map["web"];
        assert_eq!(
            web["prod"],
            Cell {
                pairs: 2,
                synced: 1,
                healthy: 2,
                degraded: 0
            }
        );
        assert_eq!(web["prod"].word(), "Progressing");
        assert_eq!(web["eu"].word(), "Healthy");
        assert_eq!(web["(no group)"].pairs, 1);
        assert_eq!(map["db"].len(), 2);
        assert_eq!(map["db"]["prod"].word(), "Degraded");
        assert_eq!(map["db"]["eu"].word(), "Healthy");
    }

    #[test]
    fn tallies_put_the_most_common_first() {
        let t = tally(["1.30", "1.29", "1.30"].into_iter());
        assert_eq!(t, vec![("1.30".to_owned(), 2), ("1.29".to_owned(), 1)]);
    }
}
