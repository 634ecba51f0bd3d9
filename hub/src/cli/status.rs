//! `switchyard status [APP] [--watch]`: one row per (app, cluster) with
//! sync and health, and one for each app assigned to no cluster; each with
//! the app's latest commit and whether it rendered, errors first; coloured
//! on a terminal, redrawn as it changes.

use super::Target;
use super::apps::{short, truncate};
use super::client::AdminClient;
use super::output::{OutputFormat, age, format_table, print_one};
use anstyle::{AnsiColor, Style};
use std::io::{IsTerminal, Write};
use std::time::Duration;
use switchyard_hub::fleet::StatusView;
use switchyard_hub::gitops::AppView;

const HEADERS: [&str; 8] = [
    "APP", "CLUSTER", "SYNC", "HEALTH", "REVISION", "LATEST", "AGE", "MESSAGE",
];
const SYNC: usize = 2;
const HEALTH: usize = 3;
const LATEST: usize = 5;

/// Green for good, yellow for on its way, red for broken, dim for unknown.
fn style(column: usize, text: &str) -> Style {
    let colour = match (column, text) {
        (SYNC, "Synced") | (HEALTH, "Healthy") => AnsiColor::Green,
        (SYNC, "OutOfSync") | (HEALTH, "Progressing") => AnsiColor::Yellow,
        (HEALTH, "Degraded" | "Missing") => AnsiColor::Red,
        (HEALTH, "Suspended") => AnsiColor::Blue,
        (SYNC | HEALTH, "Unknown") => return Style::new().dimmed(),
        (LATEST, t) if t.ends_with(" failed") => AnsiColor::Red,
        (LATEST, t) if t.ends_with(" pending") => AnsiColor::Yellow,
        _ => return Style::new(),
    };
    Style::new().fg_color(Some(colour.into()))
}

fn row(r: &StatusView) -> Vec<String> {
    let revision = match &r.applied_commit {
        Some(applied) if *applied != r.desired_commit => format!(
            "{} -> {}",
            short(&Some(applied.clone())),
            short(&Some(r.desired_commit.clone()))
        ),
        // An app assigned to no cluster has no commit there.
        _ if r.desired_commit.is_empty() => "-".into(),
        _ => short(&Some(r.desired_commit.clone())),
    };
    // The latest commit, and "failed" or "pending" unless it rendered.
    let latest = match (&r.latest_commit, r.latest_render.as_deref()) {
        (None, _) => "-".into(),
        (Some(c), Some("Rendered") | None) => short(&Some(c.clone())),
        (Some(c), Some(state)) => {
            format!("{} {}", short(&Some(c.clone())), state.to_lowercase())
        }
    };
    vec![
        r.app.clone(),
        if r.cluster.is_empty() {
            "-".into()
        } else {
            r.cluster.clone()
        },
        r.sync.clone(),
        r.health.clone(),
        revision,
        latest,
        r.observed_at.as_deref().map_or_else(|| "-".into(), age),
        match &r.error {
            // The hub's error first: the cluster runs an older commit
            // until it is fixed. Its "render of app X at commit Y" prefix
            // repeats the row's own columns.
            Some(e) => truncate(
                e.split_once(" failed: ")
                    .map_or(e.as_str(), |(_, rest)| rest),
                70,
            ),
            // Then what the hub saw coming: an object another app brings.
            None => match &r.warning {
                Some(w) => truncate(&format!("warning: {w}"), 70),
                None => r
                    .message
                    .as_deref()
                    .map_or_else(String::new, |m| truncate(m, 70)),
            },
        },
    ]
}

fn render(rows: &[StatusView]) -> String {
    if rows.is_empty() {
        return "No apps yet. Create one with: switchyard app create NAME --repo R --path P\n"
            .into();
    }
    format_table(&HEADERS, rows.iter().map(row), &style)
}

/// What a redraw is about: everything but the times, which move on their own.
fn fingerprint(rows: &[StatusView]) -> Vec<[&str; 10]> {
    rows.iter()
        .map(|r| {
            [
                r.app.as_str(),
                r.cluster.as_str(),
                r.sync.as_str(),
                r.health.as_str(),
                r.applied_commit.as_deref().unwrap_or(&r.desired_commit),
                r.message.as_deref().unwrap_or_default(),
                r.error.as_deref().unwrap_or_default(),
                r.warning.as_deref().unwrap_or_default(),
                r.latest_commit.as_deref().unwrap_or_default(),
                r.latest_render.as_deref().unwrap_or_default(),
            ]
        })
        .collect()
}

fn path(app: Option<&str>) -> String {
    match app {
        Some(app) => format!("/status?app={app}"),
        None => "/status".to_owned(),
    }
}

pub(crate) async fn status(
    app: Option<String>,
    target: &Target,
    output: OutputFormat,
    watch: Option<Duration>,
) -> anyhow::Result<()> {
    let client = AdminClient::discover(target)?;
    if let Some(app) = &app {
        // A name that is no app is an error (exit code 3), not an empty table.
        let _: AppView = client.get(&format!("/apps/{app}")).await?;
    }
    let path = path(app.as_deref());
    if let Some(interval) = watch {
        return watch_status(&client, &path, interval, output).await;
    }
    let rows: Vec<StatusView> = client.get(&path).await?;
    if output != OutputFormat::Table {
        return print_one(&rows, output);
    }
    write!(anstream::stdout(), "{}", render(&rows))?;
    Ok(())
}

/// Ask every `interval`, print only when something other than the times
/// changed: on a terminal the screen is redrawn in place, otherwise each new
/// table follows the last after a blank line. Ctrl-C (or SIGTERM) ends it
/// with exit code 0.
async fn watch_status(
    client: &AdminClient,
    path: &str,
    interval: Duration,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let terminal = std::io::stdout().is_terminal();
    let mut stop = std::pin::pin!(super::shutdown_signal());
    let mut shown: Option<Vec<StatusView>> = None;
    let mut failing = None;
    loop {
        match client.get::<Vec<StatusView>>(path).await {
            Ok(rows) => {
                failing = None;
                let changed = shown
                    .as_ref()
                    .is_none_or(|old| fingerprint(old) != fingerprint(&rows));
                if changed {
                    let mut out = anstream::stdout();
                    if terminal {
                        // Home and clear: redraw in place, like `watch`.
                        write!(out, "\x1b[H\x1b[2J")?;
                        writeln!(
                            out,
                            "Every {}: switchyard status  (Ctrl-C to stop)\n",
                            humantime::format_duration(interval)
                        )?;
                    } else if shown.is_some() {
                        writeln!(out)?;
                    }
                    if output == OutputFormat::Table {
                        write!(out, "{}", render(&rows))?;
                    } else {
                        print_one(&rows, output)?;
                    }
                    std::io::stdout().flush()?;
                    shown = Some(rows);
                }
            }
            // A hub restarting is not the end of a watch.
            Err(e) => {
                let message = format!("{e:#}");
                if failing.as_ref() != Some(&message) {
                    eprintln!(
                        "{message}; retrying every {}",
                        humantime::format_duration(interval)
                    );
                    failing = Some(message);
                }
            }
        }
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_and_health_are_coloured_and_other_cells_are_not() {
        assert_ne!(style(SYNC, "Synced"), Style::new());
        assert_ne!(style(HEALTH, "Degraded"), style(HEALTH, "Healthy"));
        assert_eq!(style(0, "Synced"), Style::new());
        assert_eq!(style(HEALTH, "whatever"), Style::new());
    }

    #[test]
    fn styles_do_not_move_the_columns() {
        let view = |sync: &str, health: &str| StatusView {
            app: "web".into(),
            cluster: "edge".into(),
            sync: sync.into(),
            health: health.into(),
            desired_commit: "0123456789".into(),
            applied_commit: None,
            message: Some("hello".into()),
            error: None,
            warning: None,
            latest_commit: None,
            latest_render: None,
            connected: true,
            observed_at: None,
            resources: Vec::new(),
        };
        let rows = [view("Synced", "Healthy"), view("OutOfSync", "Degraded")];
        let coloured = render(&rows);
        assert!(coloured.contains('\x1b'), "{coloured}");
        let plain = format_table(&HEADERS, rows.iter().map(row), &|_, _| Style::new());
        assert!(!plain.contains('\x1b'));
        let mut stripped = Vec::new();
        let mut stream = anstream::StripStream::new(&mut stripped);
        stream.write_all(coloured.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(stripped).unwrap(), plain);
        assert!(
            plain.contains("web   edge      OutOfSync   Degraded"),
            "{plain}"
        );
    }
}
