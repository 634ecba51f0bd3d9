//! Sign-in with an OpenID Connect provider: the hub's settings for it
//! (`serve --oidc-*`), the provider's discovery document and keys, the
//! browser's authorization code flow (PKCE, state, nonce) that ends in a
//! session, and the check of provider-issued JWTs presented as API bearer
//! tokens (`switchyard login`).
//!
//! Pure parts (`role_map`, `jwt`) decide; `provider` fetches; `flow`
//! serves the two browser routes and the CLI's settings route.

mod flow;
mod jwt;
mod provider;
mod role_map;

pub use flow::{CliSettings, SessionSink, router};
pub use jwt::{Identity, looks_like_jwt};
pub use provider::{Metadata, Provider};
pub use role_map::RoleMap;

use std::path::PathBuf;

/// What went wrong configuring, reaching the provider or checking a token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--oidc-role-map entry {entry:?}: {reason}")]
    RoleMap { entry: String, reason: String },
    #[error("{0} is required with --oidc-issuer")]
    Missing(&'static str),
    #[error("{0} is set but --oidc-issuer is not")]
    NoIssuer(&'static str),
    #[error(
        "--oidc-issuer {0:?} must be an https:// URL (http:// only for a provider on a loopback address)"
    )]
    Issuer(String),
    #[error("cannot read {what} {path}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a PEM CA certificate: {message}")]
    Ca { path: PathBuf, message: String },
    #[error("the OpenID provider is not reachable yet ({0}); try again shortly")]
    Unavailable(String),
    #[error("the OpenID provider answered {url}: {message}")]
    Provider { url: String, message: String },
    #[error("not a JWT: {0}")]
    Malformed(&'static str),
    #[error("signature algorithm {0:?} is not accepted")]
    Algorithm(String),
    #[error("signed by a key the provider does not publish (kid {0:?})")]
    UnknownKey(String),
    #[error("the signature does not match the provider's key")]
    Signature,
    #[error("issued by {got:?}, not by the configured provider {want:?}")]
    WrongIssuer { got: String, want: String },
    #[error("issued for audience {0:?}, not for this hub's client id")]
    Audience(String),
    #[error("expired at {}", crate::clock::rfc3339(*.0))]
    Expired(u64),
    #[error("not valid yet (nbf in the future)")]
    NotYetValid,
    #[error("the nonce does not match this sign-in")]
    Nonce,
    #[error(
        "{user} is in no group of --oidc-role-map (groups: {groups}) and the map has no `*` rule, so no role applies"
    )]
    NoRole { user: String, groups: String },
}

/// `serve`'s OIDC options as given (flags or config file), each possibly
/// unset; [`Options::load`] checks them and reads the files they name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub cli_client_id: Option<String>,
    pub role_map: Option<String>,
    pub groups_claim: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub scopes: Option<String>,
    pub redirect_uri: Option<String>,
}

/// Checked OIDC settings of a hub.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The issuer URL exactly as configured (and as tokens must name it).
    pub issuer: String,
    /// The hub's confidential client (browser sign-in).
    pub client_id: String,
    pub client_secret: String,
    /// The public client `switchyard login` uses (device flow).
    pub cli_client_id: String,
    pub role_map: RoleMap,
    pub groups_claim: String,
    /// PEM of a private CA that signs the provider's certificate.
    pub ca_pem: Option<String>,
    /// Scopes asked for at sign-in.
    pub scopes: String,
    /// Where the provider sends browsers back; `None`: from the request's
    /// Host header.
    pub redirect_uri: Option<String>,
}

/// Default scopes: the identity, plus `groups`, which most providers (Dex,
/// Keycloak with a mapper, oidc-provider) need to put the groups claim in.
pub const DEFAULT_SCOPES: &str = "openid profile email groups";

/// An issuer URL the hub may talk to: https, or http to a loopback address
/// (a provider on the same machine, as in tests).
pub fn check_issuer(issuer: &str) -> Result<(), Error> {
    let bad = || Error::Issuer(issuer.to_owned());
    let url = url::Url::parse(issuer).map_err(|_| bad())?;
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if loopback { Ok(()) } else { Err(bad()) }
        }
        _ => Err(bad()),
    }
}

impl Options {
    /// Check what needs no file: `None` when OIDC is not configured.
    pub fn validate(&self) -> Result<Option<()>, Error> {
        let Some(issuer) = &self.issuer else {
            for (set, flag) in [
                (self.client_id.is_some(), "--oidc-client-id"),
                (
                    self.client_secret_file.is_some(),
                    "--oidc-client-secret-file",
                ),
                (self.cli_client_id.is_some(), "--oidc-cli-client-id"),
                (self.role_map.is_some(), "--oidc-role-map"),
                (self.groups_claim.is_some(), "--oidc-groups-claim"),
                (self.ca_file.is_some(), "--oidc-ca-file"),
                (self.scopes.is_some(), "--oidc-scopes"),
                (self.redirect_uri.is_some(), "--oidc-redirect-uri"),
            ] {
                if set {
                    return Err(Error::NoIssuer(flag));
                }
            }
            return Ok(None);
        };
        check_issuer(issuer)?;
        if self.client_id.as_deref().is_none_or(str::is_empty) {
            return Err(Error::Missing("--oidc-client-id"));
        }
        if self.client_secret_file.is_none() {
            return Err(Error::Missing("--oidc-client-secret-file"));
        }
        RoleMap::parse(
            self.role_map
                .as_deref()
                .ok_or(Error::Missing("--oidc-role-map"))?,
        )?;
        Ok(Some(()))
    }

    /// The settings, with the secret and CA files read; `None` when OIDC
    /// is not configured.
    pub fn load(&self) -> Result<Option<Settings>, Error> {
        if self.validate()?.is_none() {
            return Ok(None);
        }
        let read = |what, path: &PathBuf| {
            std::fs::read_to_string(path).map_err(|source| Error::Read {
                what,
                path: path.clone(),
                source,
            })
        };
        let secret_file = self.client_secret_file.as_ref().expect("validated");
        let client_secret = read("the OIDC client secret", secret_file)?
            .trim()
            .to_owned();
        let ca_pem = match &self.ca_file {
            Some(path) => Some(read("the OIDC provider's CA", path)?),
            None => None,
        };
        let client_id = self.client_id.clone().expect("validated");
        Ok(Some(Settings {
            issuer: self.issuer.clone().expect("validated"),
            cli_client_id: self
                .cli_client_id
                .clone()
                .unwrap_or_else(|| client_id.clone()),
            client_id,
            client_secret,
            role_map: RoleMap::parse(self.role_map.as_deref().expect("validated"))?,
            groups_claim: self
                .groups_claim
                .clone()
                .unwrap_or_else(|| "groups".to_owned()),
            ca_pem,
            scopes: self
                .scopes
                .clone()
                .unwrap_or_else(|| DEFAULT_SCOPES.to_owned()),
            redirect_uri: self.redirect_uri.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_is_https_unless_on_loopback() {
        for ok in [
            "https://login.example.com/realms/ops",
            "http://127.0.0.1:8080/",
            "http://[::1]:9/",
            "http://localhost:3000",
        ] {
            assert!(check_issuer(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://login.example.com/",
            "http://10.0.0.1/",
            "ftp://x/",
            "login.example.com",
        ] {
            assert!(matches!(check_issuer(bad), Err(Error::Issuer(_))), "{bad}");
        }
    }

    #[test]
    fn options_need_an_issuer_client_secret_and_role_map_together() {
        assert!(Options::default().validate().unwrap().is_none());
        let lone = Options {
            client_id: Some("hub".into()),
            ..Options::default()
        };
        assert_eq!(
            lone.validate().unwrap_err().to_string(),
            "--oidc-client-id is set but --oidc-issuer is not"
        );
        let mut full = Options {
            issuer: Some("https://idp.example.com".into()),
            client_id: Some("hub".into()),
            client_secret_file: Some("/etc/switchyard/oidc-secret".into()),
            role_map: Some("ops=admin".into()),
            ..Options::default()
        };
        assert!(full.validate().unwrap().is_some());
        full.role_map = Some("ops=root".into());
        assert!(
            full.validate()
                .unwrap_err()
                .to_string()
                .contains("\"ops=root\"")
        );
        full.role_map = None;
        assert!(
            full.validate()
                .unwrap_err()
                .to_string()
                .contains("--oidc-role-map")
        );
    }
}
