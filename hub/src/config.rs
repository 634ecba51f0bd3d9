//! `switchyard serve` settings from a YAML file (`--config FILE`), and how
//! they combine with flags and environment variables: flags, then
//! environment variables (both resolved by the command line), then the
//! file, then the defaults.

use crate::server::ServeConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
}

/// How the hub logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Every setting of `serve`, each one possibly unset. The same shape holds
/// what the command line gave and what the file says; keys are the flags'
/// names without their dashes in front.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeSettings {
    pub data_dir: Option<PathBuf>,
    pub quic_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub http_insecure: Option<bool>,
    pub public_names: Option<Vec<String>>,
    #[serde(default, deserialize_with = "duration")]
    pub cert_ttl: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub heartbeat: Option<Duration>,
    pub log_format: Option<LogFormat>,
    pub max_connections_per_ip: Option<u32>,
    pub max_streams_per_connection: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub request_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub reply_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub idle_timeout: Option<Duration>,
    pub enroll_per_minute: Option<u32>,
    pub enroll_burst: Option<u32>,
    pub git_max_pack_bytes: Option<u64>,
    pub git_max_objects: Option<u64>,
    pub git_max_object_bytes: Option<u64>,
    #[serde(default, deserialize_with = "duration")]
    pub git_stall_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub render_timeout: Option<Duration>,
    pub render_memory_mib: Option<u64>,
    pub render_concurrency: Option<usize>,
    pub oidc_issuer: Option<String>,
    pub oidc_client_id: Option<String>,
    pub oidc_client_secret_file: Option<PathBuf>,
    pub oidc_cli_client_id: Option<String>,
    pub oidc_role_map: Option<String>,
    pub oidc_groups_claim: Option<String>,
    pub oidc_ca_file: Option<PathBuf>,
    pub oidc_scopes: Option<String>,
    pub oidc_redirect_uri: Option<String>,
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map(Some).map_err(|e| {
        serde::de::Error::custom(format!("{text:?} is not a duration such as 30s or 7d: {e}"))
    })
}

impl ServeSettings {
    /// Read and check `path`; an unknown key or a bad value is an error
    /// naming the file, line and column.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_saphyr::from_str(text).map_err(|error| {
            let (line, column) = error.location().map_or((1, 1), |l| (l.line(), l.column()));
            let message = error.without_snippet().to_string();
            // The location is said in front already.
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_owned(),
                None => message,
            };
            Error::Invalid {
                path: path.to_owned(),
                line,
                column,
                message,
            }
        })
    }

    /// These settings, with `fallback`'s where these have none.
    pub fn or(self, fallback: ServeSettings) -> ServeSettings {
        ServeSettings {
            data_dir: self.data_dir.or(fallback.data_dir),
            quic_listen: self.quic_listen.or(fallback.quic_listen),
            http_listen: self.http_listen.or(fallback.http_listen),
            http_insecure: self.http_insecure.or(fallback.http_insecure),
            public_names: self.public_names.or(fallback.public_names),
            cert_ttl: self.cert_ttl.or(fallback.cert_ttl),
            heartbeat: self.heartbeat.or(fallback.heartbeat),
            log_format: self.log_format.or(fallback.log_format),
            max_connections_per_ip: self
                .max_connections_per_ip
                .or(fallback.max_connections_per_ip),
            max_streams_per_connection: self
                .max_streams_per_connection
                .or(fallback.max_streams_per_connection),
            request_timeout: self.request_timeout.or(fallback.request_timeout),
            reply_timeout: self.reply_timeout.or(fallback.reply_timeout),
            idle_timeout: self.idle_timeout.or(fallback.idle_timeout),
            enroll_per_minute: self.enroll_per_minute.or(fallback.enroll_per_minute),
            enroll_burst: self.enroll_burst.or(fallback.enroll_burst),
            git_max_pack_bytes: self.git_max_pack_bytes.or(fallback.git_max_pack_bytes),
            git_max_objects: self.git_max_objects.or(fallback.git_max_objects),
            git_max_object_bytes: self.git_max_object_bytes.or(fallback.git_max_object_bytes),
            git_stall_timeout: self.git_stall_timeout.or(fallback.git_stall_timeout),
            render_timeout: self.render_timeout.or(fallback.render_timeout),
            render_memory_mib: self.render_memory_mib.or(fallback.render_memory_mib),
            render_concurrency: self.render_concurrency.or(fallback.render_concurrency),
            oidc_issuer: self.oidc_issuer.or(fallback.oidc_issuer),
            oidc_client_id: self.oidc_client_id.or(fallback.oidc_client_id),
            oidc_client_secret_file: self
                .oidc_client_secret_file
                .or(fallback.oidc_client_secret_file),
            oidc_cli_client_id: self.oidc_cli_client_id.or(fallback.oidc_cli_client_id),
            oidc_role_map: self.oidc_role_map.or(fallback.oidc_role_map),
            oidc_groups_claim: self.oidc_groups_claim.or(fallback.oidc_groups_claim),
            oidc_ca_file: self.oidc_ca_file.or(fallback.oidc_ca_file),
            oidc_scopes: self.oidc_scopes.or(fallback.oidc_scopes),
            oidc_redirect_uri: self.oidc_redirect_uri.or(fallback.oidc_redirect_uri),
        }
    }

    /// The hub's configuration, with the defaults for what is still unset.
    pub fn resolve(self) -> (ServeConfig, LogFormat) {
        let config = ServeConfig {
            data_dir: self.data_dir.unwrap_or_else(crate::paths::default_data_dir),
            quic_listen: self
                .quic_listen
                .unwrap_or_else(|| "0.0.0.0:7700".parse().expect("valid address")),
            http_listen: self
                .http_listen
                .unwrap_or_else(|| "127.0.0.1:7701".parse().expect("valid address")),
            public_names: self.public_names.unwrap_or_default(),
            cert_ttl: self.cert_ttl.unwrap_or(Duration::from_secs(7 * 24 * 3600)),
            heartbeat: self.heartbeat.unwrap_or(Duration::from_secs(30)),
            http_insecure: self.http_insecure.unwrap_or(false),
            limits: {
                let d = crate::limits::Limits::default();
                crate::limits::Limits {
                    max_connections_per_ip: self
                        .max_connections_per_ip
                        .unwrap_or(d.max_connections_per_ip),
                    max_streams_per_connection: self
                        .max_streams_per_connection
                        .unwrap_or(d.max_streams_per_connection),
                    request_timeout: self.request_timeout.unwrap_or(d.request_timeout),
                    reply_timeout: self.reply_timeout.unwrap_or(d.reply_timeout),
                    idle_timeout: self.idle_timeout.unwrap_or(d.idle_timeout),
                    enroll_per_minute: self.enroll_per_minute.unwrap_or(d.enroll_per_minute),
                    enroll_burst: self.enroll_burst.unwrap_or(d.enroll_burst),
                    render: crate::render::sandbox::RenderLimits {
                        timeout: self.render_timeout.unwrap_or(d.render.timeout),
                        memory_bytes: self
                            .render_memory_mib
                            .map_or(d.render.memory_bytes, |m| m.saturating_mul(1024 * 1024)),
                        concurrency: self.render_concurrency.unwrap_or(d.render.concurrency),
                    },
                }
            },
            fetch_limits: {
                let d = crate::git::FetchLimits::default();
                crate::git::FetchLimits {
                    max_pack_bytes: self.git_max_pack_bytes.unwrap_or(d.max_pack_bytes),
                    max_objects: self.git_max_objects.unwrap_or(d.max_objects),
                    max_object_bytes: self.git_max_object_bytes.unwrap_or(d.max_object_bytes),
                    stall_timeout: self.git_stall_timeout.unwrap_or(d.stall_timeout),
                }
            },
            oidc: crate::oidc::Options {
                issuer: self.oidc_issuer,
                client_id: self.oidc_client_id,
                client_secret_file: self.oidc_client_secret_file,
                cli_client_id: self.oidc_cli_client_id,
                role_map: self.oidc_role_map,
                groups_claim: self.oidc_groups_claim,
                ca_file: self.oidc_ca_file,
                scopes: self.oidc_scopes,
                redirect_uri: self.oidc_redirect_uri,
            },
        };
        (config, self.log_format.unwrap_or(LogFormat::Text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# the hub
data-dir: /var/lib/switchyard
quic-listen: 0.0.0.0:7800
public-names: [hub.example.com, 203.0.113.7]
cert-ttl: 3d
log-format: json
";

    #[test]
    fn every_key_is_read() {
        let settings = ServeSettings::parse(FILE, Path::new("hub.yaml")).unwrap();
        assert_eq!(
            settings,
            ServeSettings {
                data_dir: Some("/var/lib/switchyard".into()),
                quic_listen: Some("0.0.0.0:7800".parse().unwrap()),
                public_names: Some(vec!["hub.example.com".into(), "203.0.113.7".into()]),
                cert_ttl: Some(Duration::from_secs(3 * 24 * 3600)),
                log_format: Some(LogFormat::Json),
                ..ServeSettings::default()
            }
        );
    }

    #[test]
    fn the_command_line_wins_over_the_file_and_the_file_over_defaults() {
        let file = ServeSettings::parse(FILE, Path::new("hub.yaml")).unwrap();
        let command_line = ServeSettings {
            quic_listen: Some("127.0.0.1:9000".parse().unwrap()),
            heartbeat: Some(Duration::from_secs(5)),
            ..ServeSettings::default()
        };
        let (config, log) = command_line.or(file).resolve();
        assert_eq!(config.quic_listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.heartbeat, Duration::from_secs(5));
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/switchyard"));
        assert_eq!(config.cert_ttl, Duration::from_secs(3 * 24 * 3600));
        assert_eq!(log, LogFormat::Json);
        // Neither says: the default.
        assert_eq!(config.http_listen, "127.0.0.1:7701".parse().unwrap());
        assert!(!config.http_insecure);
    }

    #[test]
    fn oidc_settings_are_read_from_the_file() {
        let text = "\
oidc-issuer: https://login.example.com/realms/ops
oidc-client-id: switchyard
oidc-client-secret-file: /etc/switchyard/oidc-secret
oidc-role-map: ops-admins=admin,*=viewer
oidc-groups-claim: roles
";
        let (config, _) = ServeSettings::parse(text, Path::new("hub.yaml"))
            .unwrap()
            .resolve();
        assert_eq!(
            config.oidc.issuer.as_deref(),
            Some("https://login.example.com/realms/ops")
        );
        assert_eq!(config.oidc.groups_claim.as_deref(), Some("roles"));
        assert_eq!(
            config.oidc.client_secret_file,
            Some(PathBuf::from("/etc/switchyard/oidc-secret"))
        );
        assert!(config.oidc.validate().unwrap().is_some());
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_line_and_column() {
        let path = Path::new("/etc/switchyard/hub.yaml");
        let cases = [
            (
                "quic-listen: 0.0.0.0:7700\nhttp-lisen: 127.0.0.1:1\n",
                2,
                "http-lisen",
            ),
            (
                "cert-ttl: 3d\nheartbeat: often\n",
                2,
                "\"often\" is not a duration",
            ),
            ("log-format: xml\n", 1, "xml"),
            ("quic-listen: 7700\n", 1, "address"),
        ];
        for (text, line, says) in cases {
            let error = ServeSettings::parse(text, path).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("/etc/switchyard/hub.yaml:{line}:")),
                "{text:?}: {error}"
            );
            assert!(error.contains(says), "{text:?}: {error}");
        }
    }
}
