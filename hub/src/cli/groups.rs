//! `switchyard group …`: named label selectors apps target by name.

use super::Target;
use super::client::AdminClient;
use super::output::{OutputFormat, print_one, print_table};
use clap::Subcommand;
use switchyard_hub::gitops::{GroupRequest, GroupView};

#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Define a group of clusters by a label selector.
    Create {
        /// The group's name: a DNS label (lowercase letters, digits, '-').
        #[arg(value_parser = super::new_group_name)]
        name: String,
        /// K=V (repeatable, all must match) or any Kubernetes selector such
        /// as 'region in (eu,us),!canary'; none selects every cluster.
        #[arg(long = "selector")]
        selectors: Vec<String>,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// List groups, how many clusters each selects and the apps that target it.
    List {
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Show one group with the clusters it selects now.
    Show {
        /// The group's name.
        name: String,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Delete a group (refused while apps target it).
    Delete {
        /// The group's name.
        name: String,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "<none>".into()
    } else {
        items.join(", ")
    }
}

fn selector_text(selector: &str) -> String {
    if selector.is_empty() {
        "<all>".into()
    } else {
        selector.to_owned()
    }
}

pub(crate) async fn group(command: GroupCommand, target: &Target) -> anyhow::Result<()> {
    let client = AdminClient::discover(target)?;
    match command {
        GroupCommand::Create {
            name,
            selectors,
            output,
        } => {
            let request = GroupRequest {
                name,
                selector: selectors.join(","),
            };
            let group: GroupView = client.post("/groups", &request).await?;
            if output != OutputFormat::Table {
                return print_one(&group, output);
            }
            println!(
                "cluster group {} created; it selects {} cluster(s) now",
                group.name,
                group.clusters.len()
            );
            Ok(())
        }
        GroupCommand::List { output } => {
            let groups: Vec<GroupView> = client.get("/groups").await?;
            if output != OutputFormat::Table {
                return print_one(&groups, output);
            }
            if groups.is_empty() {
                println!(
                    "No cluster groups. Create one with: switchyard group create NAME --selector K=V"
                );
                return Ok(());
            }
            print_table(
                &["NAME", "SELECTOR", "CLUSTERS", "APPS"],
                groups.iter().map(|g| {
                    vec![
                        g.name.clone(),
                        selector_text(&g.selector),
                        g.clusters.len().to_string(),
                        or_none(&g.apps),
                    ]
                }),
            );
            Ok(())
        }
        GroupCommand::Show { name, output } => {
            let group: GroupView = client.get(&format!("/groups/{name}")).await?;
            if output != OutputFormat::Table {
                return print_one(&group, output);
            }
            for (field, value) in [
                ("Name", group.name.clone()),
                ("Selector", selector_text(&group.selector)),
                ("Clusters", or_none(&group.clusters)),
                ("Apps", or_none(&group.apps)),
                ("Created", group.created_at.clone()),
            ] {
                println!("{:<16}{value}", format!("{field}:"));
            }
            Ok(())
        }
        GroupCommand::Delete { name, output } => {
            let group: GroupView = client.delete(&format!("/groups/{name}")).await?;
            if output != OutputFormat::Table {
                return print_one(&group, output);
            }
            println!("cluster group {} deleted", group.name);
            Ok(())
        }
    }
}
