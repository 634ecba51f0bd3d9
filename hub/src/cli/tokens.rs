//! `switchyard token …` (admin API tokens with roles) and `switchyard audit`.

use super::Target;
use super::client::AdminClient;
use super::output::{OutputFormat, age, print_one, print_table};
use anyhow::{Context, bail};
use clap::Subcommand;
use std::time::{Duration, SystemTime};
use switchyard_hub::api::{AuditView, CreateTokenRequest, CreatedToken, TokenView};
use switchyard_hub::auth::Role;

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Mint a bearer token for the admin API; its secret is printed once.
    Create {
        /// The token's name.
        name: String,
        /// viewer: read; operator: read, app sync and app rollback; admin: everything.
        #[arg(long, value_enum)]
        role: Role,
        /// Lifetime, such as 12h or 30d (default: until revoked).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// List tokens: name, role, state, created, expires, last used (never the secret).
    List {
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Revoke a token at once; requests with it are refused from then on.
    Revoke {
        /// The token's name.
        name: String,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
}

pub(crate) async fn token(command: TokenCommand, target: &Target) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            name,
            role,
            ttl,
            output,
        } => {
            let client = AdminClient::discover(target)?;
            let request = CreateTokenRequest {
                name,
                role,
                ttl_secs: ttl.map(|t| t.as_secs().max(1)),
            };
            let created: CreatedToken = client.post("/tokens", &request).await?;
            if output != OutputFormat::Table {
                return print_one(&created, output);
            }
            let t = &created.token;
            let expiry = t
                .expires_at
                .as_deref()
                .map_or_else(|| "never expires".to_owned(), |e| format!("expires at {e}"));
            println!(
                "token {} created with role {}; it {expiry}.",
                t.name, t.role
            );
            println!("This is the only time its secret is shown; store it now:\n");
            println!("  {}\n", created.secret);
            println!("Use it with: SWITCHYARD_TOKEN=<secret> switchyard --server URL …");
            Ok(())
        }
        TokenCommand::List { output } => {
            let client = AdminClient::discover(target)?;
            let tokens: Vec<TokenView> = client.get("/tokens").await?;
            if output != OutputFormat::Table {
                return print_one(&tokens, output);
            }
            if tokens.is_empty() {
                println!(
                    "No tokens besides the built-in admin token. Create one with: switchyard token create NAME --role viewer"
                );
                return Ok(());
            }
            print_table(
                &["NAME", "ROLE", "STATE", "CREATED", "EXPIRES", "LAST USED"],
                tokens.iter().map(|t| {
                    vec![
                        t.name.clone(),
                        t.role.to_string(),
                        t.state.clone(),
                        age(&t.created_at),
                        t.expires_at.clone().unwrap_or_else(|| "never".into()),
                        t.last_used.as_deref().map_or_else(|| "never".into(), age),
                    ]
                }),
            );
            Ok(())
        }
        TokenCommand::Revoke { name, output } => {
            let client = AdminClient::discover(target)?;
            let revoked: TokenView = client.delete(&format!("/tokens/{name}")).await?;
            if output != OutputFormat::Table {
                return print_one(&revoked, output);
            }
            println!(
                "token {} revoked at {}",
                revoked.name,
                revoked.revoked_at.as_deref().unwrap_or("-")
            );
            Ok(())
        }
    }
}

/// `--since 1h` (that long ago) or an RFC 3339 time, as RFC 3339.
fn parse_since(text: &str) -> anyhow::Result<String> {
    if let Ok(ago) = humantime::parse_duration(text) {
        let then = SystemTime::now()
            .checked_sub(ago)
            .context("--since reaches before the Unix epoch")?;
        return Ok(humantime::format_rfc3339_seconds(then).to_string());
    }
    match humantime::parse_rfc3339_weak(text) {
        Ok(then) => Ok(humantime::format_rfc3339_seconds(then).to_string()),
        Err(_) => bail!(
            "--since {text:?}: give a duration such as 1h or 2d, or a UTC time such as 2025-01-31T12:00:00Z"
        ),
    }
}

pub(crate) async fn audit(
    since: Option<String>,
    limit: Option<usize>,
    target: &Target,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if let Some(since) = since {
        query.push(format!("since={}", parse_since(&since)?));
    }
    if let Some(limit) = limit {
        query.push(format!("limit={limit}"));
    }
    let path = if query.is_empty() {
        "/audit".to_owned()
    } else {
        format!("/audit?{}", query.join("&"))
    };
    let client = AdminClient::discover(target)?;
    let entries: Vec<AuditView> = client.get(&path).await?;
    if output != OutputFormat::Table {
        return print_one(&entries, output);
    }
    if entries.is_empty() {
        println!("No audit entries.");
        return Ok(());
    }
    print_table(
        &[
            "TIME", "ACTOR", "ROLE", "METHOD", "PATH", "TARGET", "STATUS", "REMOTE", "MESSAGE",
        ],
        entries.iter().map(|e| {
            vec![
                e.time.clone(),
                e.actor.clone(),
                e.role.to_string(),
                e.method.clone(),
                e.path.clone(),
                e.target.clone().unwrap_or_else(|| "-".into()),
                e.status.to_string(),
                e.remote.clone().unwrap_or_else(|| "-".into()),
                e.message.clone().unwrap_or_default(),
            ]
        }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_utc_times() {
        assert_eq!(
            parse_since("2025-01-31T12:00:00Z").unwrap(),
            "2025-01-31T12:00:00Z"
        );
        let hour_ago = humantime::parse_rfc3339(&parse_since("1h").unwrap()).unwrap();
        let elapsed = SystemTime::now().duration_since(hour_ago).unwrap();
        assert!(elapsed >= Duration::from_secs(3599) && elapsed <= Duration::from_secs(3700));
        assert!(parse_since("yesterday").is_err());
    }
}
