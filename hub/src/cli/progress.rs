//! `switchyard repo add --wait`: follow a repo's first fetch, with a
//! progress bar on a terminal and one plain line per stage otherwise.

use super::client::AdminClient;
use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;
use switchyard_hub::gitops::{FetchActivity, RepoView};
use tokio::time::Instant;

/// How often the hub is asked while a fetch runs.
const POLL: Duration = Duration::from_millis(200);

/// How progress is shown: a bar on a terminal, lines on stderr otherwise.
enum Display {
    Bar(ProgressBar),
    Lines { last_stage: Option<String> },
}

impl Display {
    fn new() -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            Display::Bar(bar)
        } else {
            Display::Lines { last_stage: None }
        }
    }

    fn show(&mut self, repo: &str, activity: &FetchActivity) {
        match self {
            Display::Bar(bar) => {
                match activity.total {
                    Some(total) if total > 0 => {
                        if bar.length() != Some(total) {
                            bar.set_length(total);
                            bar.set_style(
                                ProgressStyle::with_template(
                                    "{spinner} {msg} [{bar:20}] {pos}/{len} ({elapsed})",
                                )
                                .expect("progress template")
                                .progress_chars("=> "),
                            );
                        }
                    }
                    _ => {
                        if bar.length().is_some() {
                            bar.unset_length();
                            bar.set_style(
                                ProgressStyle::with_template("{spinner} {msg} {pos} ({elapsed})")
                                    .expect("progress template"),
                            );
                        }
                    }
                }
                bar.set_message(format!("{repo}: {}", activity.stage));
                bar.set_position(activity.done);
            }
            Display::Lines { last_stage } => {
                if last_stage.as_deref() != Some(activity.stage.as_str()) {
                    eprintln!("{}", stage_line(repo, activity));
                    *last_stage = Some(activity.stage.clone());
                }
            }
        }
    }

    fn finish(self) {
        if let Display::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// One line of progress when not on a terminal: the stage, with the count
/// only when there is one to tell ("starting 0" says nothing).
fn stage_line(repo: &str, activity: &FetchActivity) -> String {
    match (activity.done, activity.total) {
        (done, Some(total)) => format!("fetching {repo}: {} {done}/{total}", activity.stage),
        (0, None) => format!("fetching {repo}: {}", activity.stage),
        (done, None) => format!("fetching {repo}: {} {done}", activity.stage),
    }
}

/// Wait for a repo's first successful fetch and return the repo as it is
/// then. A failed first fetch ends the wait with its error (the hub keeps
/// retrying in the background).
pub(crate) async fn first_fetch(
    client: &AdminClient,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<RepoView> {
    let deadline = Instant::now() + timeout;
    let mut display = Display::new();
    let outcome = loop {
        let repo: RepoView = client.get(&format!("/repos/{name}")).await?;
        if repo.last_success.is_some() {
            break Ok(repo);
        }
        if let Some(error) = &repo.error {
            break Err(anyhow::anyhow!(
                "the first fetch of repo {name} failed: {error}\nthe hub retries with backoff; see `switchyard repo show {name}`"
            ));
        }
        if let Some(activity) = &repo.fetching {
            display.show(name, activity);
        }
        let now = Instant::now();
        if now >= deadline {
            break Err(super::exit::exit(
                super::exit::code::TIMEOUT,
                format!(
                    "repo {name} was not fetched within {}; it stays registered and the hub keeps fetching: see `switchyard repo show {name}`",
                    humantime::format_duration(timeout)
                ),
            ));
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    };
    display.finish();
    outcome
}

/// What `repo add --wait` prints once the repo is fetched.
pub(crate) fn report_fetched(repo: &RepoView) -> anyhow::Result<()> {
    let Some(head) = &repo.head else {
        bail!(
            "repo {} was fetched ({} refs) but has no branch {}; fix --branch with `switchyard apply` or remove and add it again",
            repo.name,
            repo.refs,
            repo.branch
        );
    };
    println!(
        "repo {} fetched: {} is at {head} ({} refs)",
        repo.name, repo.branch, repo.refs
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(stage: &str, done: u64, total: Option<u64>) -> FetchActivity {
        FetchActivity {
            stage: stage.into(),
            done,
            total,
            started_at: String::new(),
        }
    }

    #[test]
    fn a_stage_without_a_count_has_no_number() {
        assert_eq!(
            stage_line("fleet", &activity("starting", 0, None)),
            "fetching fleet: starting"
        );
        assert_eq!(
            stage_line("fleet", &activity("receiving objects", 12, Some(40))),
            "fetching fleet: receiving objects 12/40"
        );
        assert_eq!(
            stage_line("fleet", &activity("resolving deltas", 7, None)),
            "fetching fleet: resolving deltas 7"
        );
    }
}
