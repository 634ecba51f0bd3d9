//! `switchyard backup` (through the admin API, while the hub runs) and
//! `switchyard restore` (offline, into a new data dir).

use super::Target;
use super::client::AdminClient;
use super::output::{OutputFormat, print_one};
use anyhow::Context;
use std::path::Path;
use switchyard_hub::backup::{self, Summary};
use switchyard_hub::paths;
use switchyard_hub::rfc3339;

pub(crate) async fn take(file: &Path, target: &Target, output: OutputFormat) -> anyhow::Result<()> {
    let client = AdminClient::discover(target)?;
    let archive = client.post_for_bytes("/backup").await?;
    // Check what arrived before keeping it: a backup that cannot be
    // restored is worse than none, because it is trusted.
    let summary = backup::read(&archive)
        .context("the hub's answer is not a backup this switchyard can restore")?
        .summary();
    switchyard_certs::write_private_file(file, &archive)
        .with_context(|| format!("writing {}", file.display()))?;
    if output != OutputFormat::Table {
        return print_one(&summary, output);
    }
    println!(
        "backup written to {} ({}), taken {}",
        file.display(),
        human_bytes(summary.bytes),
        rfc3339(summary.taken_at)
    );
    println!("  {}", counts(&summary));
    println!("It holds the hub's CA private key: keep it as secret as the key itself.");
    Ok(())
}

pub(crate) fn restore(
    file: &Path,
    data_dir: Option<std::path::PathBuf>,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let data_dir = data_dir.unwrap_or_else(paths::default_data_dir);
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let archive =
        backup::read(&bytes).with_context(|| format!("{} cannot be restored", file.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let invalidated = backup::restore(&archive, &data_dir, now)
        .with_context(|| format!("restoring into {}", data_dir.display()))?;
    let summary = archive.summary();
    if output != OutputFormat::Table {
        return print_one(
            &Restored {
                summary,
                invalidated,
            },
            output,
        );
    }
    println!(
        "restored the backup taken {} into {}",
        rfc3339(summary.taken_at),
        data_dir.display()
    );
    println!("  {}", counts(&summary));
    println!(
        "Start it with `switchyard serve --data-dir {}` and the same --quic-listen and --public-name",
        data_dir.display()
    );
    println!("as the old hub, so agents find it; they reconnect with the certificates they hold.");
    println!();
    println!(
        "Credentials are not restored (the backup cannot tell which were spent or revoked after it):"
    );
    println!(
        "  {} unused bootstrap tokens dropped: mint new ones with `switchyard cluster token NAME`;",
        invalidated.bootstrap_tokens
    );
    println!(
        "  {} API tokens revoked: create new ones with `switchyard token create NAME --role ROLE`;",
        invalidated.api_tokens
    );
    println!(
        "  the built-in admin token is new: the hub writes it to {} on its first start,",
        paths::admin_token_file(&data_dir).display()
    );
    println!("  and `switchyard` commands on this machine use it from there.");
    Ok(())
}

/// What `restore -o json` prints.
#[derive(serde::Serialize)]
struct Restored {
    #[serde(flatten)]
    summary: Summary,
    invalidated: backup::Invalidated,
}

fn counts(s: &Summary) -> String {
    format!(
        "{} clusters, {} repos, {} apps, {} groups, {} revisions, {} bundles, {} audit entries, {} identity files",
        s.clusters, s.repos, s.apps, s.groups, s.revisions, s.bundles, s.audit_entries, s.files
    )
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
