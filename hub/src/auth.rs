//! Who may call the admin API: bearer tokens with roles, the built-in admin
//! token, tokens of an OpenID provider (through [`BearerVerifier`]), and the
//! least role each route needs.

use crate::clock::rfc3339;
pub use crate::roles::Role;
pub use crate::secrets::token_hash;
use crate::store::{self, ApiTokenRecord, Store};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Name the built-in admin token (`DATA_DIR/admin-token`) acts under; no
/// stored token may take it, so the audit log never confuses the two.
pub const BUILTIN_ADMIN: &str = "admin";

/// Prefix of the secrets `token create` mints, so they are recognisable in
/// logs and secret scanners.
pub const TOKEN_PREFIX: &str = "syt_";

/// Why a request was not let through, or a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "missing bearer token: set SWITCHYARD_TOKEN or run on the hub's machine with its --data-dir"
    )]
    Missing,
    #[error("invalid bearer token")]
    Invalid,
    #[error("OpenID token refused: {0}")]
    Rejected(String),
    #[error("token {name} expired at {}", rfc3339(*at))]
    Expired { name: String, at: u64 },
    #[error("token {name} was revoked at {}", rfc3339(*at))]
    Revoked { name: String, at: u64 },
    #[error("your web session has expired or was ended: sign in again at /login")]
    SessionEnded,
    #[error(
        "missing or wrong X-CSRF-Token header: a request made with the web session's cookie must carry the token of that session"
    )]
    Csrf,
    #[error("cross-origin request refused: Origin {0:?} is not this hub")]
    ForeignOrigin(String),
    #[error("role {role} may not {action}")]
    Forbidden { role: Role, action: &'static str },
    #[error(
        "token name {0:?} is not valid: use 1 to 63 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit"
    )]
    InvalidName(String),
    #[error(
        "token name {BUILTIN_ADMIN} belongs to the built-in admin token (DATA_DIR/admin-token); replace that file and restart the hub to change it"
    )]
    Reserved,
    #[error("the token lifetime must be at least 1s")]
    InvalidTtl,
    #[error("token {0} not found")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name ([`BUILTIN_ADMIN`] for the built-in admin token).
    pub name: String,
    pub role: Role,
}

impl Principal {
    fn is_builtin(&self) -> bool {
        self.name == BUILTIN_ADMIN
    }
}

/// The least role a route needs and how a refusal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub method: &'static str,
    /// Route pattern under `/api/v1`, as registered in the router.
    pub route: &'static str,
    pub role: Role,
    /// Completes "role viewer may not …".
    pub action: &'static str,
    /// Kind of object the request acts on (`app`, `cluster`, …), named by
    /// the `{name}` of the route or the `name` field of the body.
    pub target: Option<&'static str>,
}

const fn rule(
    method: &'static str,
    route: &'static str,
    role: Role,
    action: &'static str,
    target: Option<&'static str>,
) -> Rule {
    Rule {
        method,
        route,
        role,
        action,
        target,
    }
}

use Role::{Admin, Operator, Viewer};

/// Every authenticated route. Reading is for viewers; syncing and rolling
/// back, which only choose among commits already in Git, for operators;
/// everything that changes what the hub follows or who may talk to it, for
/// admins. Tokens and the audit log are admin-only even to read: they say
/// who may do what.
pub const RULES: &[Rule] = &[
    rule("GET", "/clusters", Viewer, "list clusters", None),
    rule("POST", "/clusters", Admin, "add clusters", Some("cluster")),
    rule(
        "GET",
        "/clusters/{name}",
        Viewer,
        "read clusters",
        Some("cluster"),
    ),
    rule(
        "DELETE",
        "/clusters/{name}",
        Admin,
        "remove clusters",
        Some("cluster"),
    ),
    rule(
        "PATCH",
        "/clusters/{name}/labels",
        Admin,
        "label clusters",
        Some("cluster"),
    ),
    rule(
        "POST",
        "/clusters/{name}/tokens",
        Admin,
        "mint bootstrap tokens for clusters",
        Some("cluster"),
    ),
    rule("GET", "/repos", Viewer, "list repos", None),
    rule("POST", "/repos", Admin, "add repos", Some("repo")),
    rule("GET", "/repos/{name}", Viewer, "read repos", Some("repo")),
    rule("PUT", "/repos/{name}", Admin, "change repos", Some("repo")),
    rule(
        "DELETE",
        "/repos/{name}",
        Admin,
        "remove repos",
        Some("repo"),
    ),
    rule(
        "POST",
        "/repos/{name}/refresh",
        Admin,
        "refresh repos",
        Some("repo"),
    ),
    rule("GET", "/groups", Viewer, "list cluster groups", None),
    rule(
        "POST",
        "/groups",
        Admin,
        "create cluster groups",
        Some("group"),
    ),
    rule(
        "GET",
        "/groups/{name}",
        Viewer,
        "read cluster groups",
        Some("group"),
    ),
    rule(
        "PUT",
        "/groups/{name}",
        Admin,
        "change cluster groups",
        Some("group"),
    ),
    rule(
        "DELETE",
        "/groups/{name}",
        Admin,
        "delete cluster groups",
        Some("group"),
    ),
    rule("GET", "/apps", Viewer, "list apps", None),
    rule("POST", "/apps", Admin, "create apps", Some("app")),
    rule("GET", "/apps/{name}", Viewer, "read apps", Some("app")),
    rule("PATCH", "/apps/{name}", Admin, "update apps", Some("app")),
    rule("DELETE", "/apps/{name}", Admin, "delete apps", Some("app")),
    rule(
        "GET",
        "/apps/{name}/history",
        Viewer,
        "read app history",
        Some("app"),
    ),
    // Viewer: the agent masks every Secret value before it sends a diff.
    rule(
        "GET",
        "/apps/{name}/diff",
        Viewer,
        "read app diffs",
        Some("app"),
    ),
    // Operator, not viewer: bundles carry whatever the repo renders,
    // Secrets included.
    rule(
        "GET",
        "/apps/{name}/manifests",
        Operator,
        "read rendered manifests",
        Some("app"),
    ),
    rule(
        "POST",
        "/apps/{name}/sync",
        Operator,
        "sync apps",
        Some("app"),
    ),
    rule(
        "POST",
        "/apps/{name}/rollback",
        Operator,
        "roll back apps",
        Some("app"),
    ),
    rule("GET", "/status", Viewer, "read status", None),
    rule("GET", "/tokens", Admin, "list API tokens", None),
    rule("POST", "/tokens", Admin, "create API tokens", Some("token")),
    rule(
        "DELETE",
        "/tokens/{name}",
        Admin,
        "revoke API tokens",
        Some("token"),
    ),
    rule("GET", "/audit", Admin, "read the audit log", None),
    rule("POST", "/backup", Admin, "take backups", None),
];

/// The rule for a request. A route missing from [`RULES`] needs admin, so
/// a route added without a rule fails closed.
pub fn rule_for(method: &str, route: &str) -> Rule {
    RULES
        .iter()
        .find(|r| r.method == method && r.route == route)
        .copied()
        .unwrap_or(Rule {
            method: "",
            route: "",
            role: Admin,
            action: "call this route",
            target: None,
        })
}

/// Refuse `principal` unless its role reaches the rule's.
pub fn authorize(principal: &Principal, rule: &Rule) -> Result<(), Error> {
    if principal.role >= rule.role {
        Ok(())
    } else {
        Err(Error::Forbidden {
            role: principal.role,
            action: rule.action,
        })
    }
}

fn validate_name(name: &str) -> Result<(), Error> {
    let ok = (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err(Error::InvalidName(name.to_owned()));
    }
    if name == BUILTIN_ADMIN {
        return Err(Error::Reserved);
    }
    Ok(())
}

/// Checks bearer tokens the hub did not mint (an OpenID provider's JWTs).
/// A trait so this module needs nothing of the provider's: the `oidc`
/// module, above this one, implements it.
pub trait BearerVerifier: Send + Sync {
    /// Whether `token` has this verifier's shape (then it alone decides).
    fn accepts(&self, token: &str) -> bool;
    /// The caller `token` stands for at `now`, or why it is refused.
    fn verify(&self, token: &str, now: u64) -> Result<Principal, String>;
}

/// Prefix of the names of callers signed in through the OpenID provider.
pub const OIDC_PREFIX: &str = "oidc:";

/// The SHA-256 of a presented token secret (surrounding whitespace ignored).
pub fn digest_of(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.trim().as_bytes()).into()
}

/// Checks bearer tokens and manages the stored ones.
pub struct Authenticator {
    store: Arc<dyn Store>,
    admin_hash: [u8; 32],
    verifier: Option<Arc<dyn BearerVerifier>>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, admin_token: &str) -> Self {
        Self {
            store,
            admin_hash: Sha256::digest(admin_token.trim().as_bytes()).into(),
            verifier: None,
        }
    }

    /// Also accept the tokens `verifier` accepts (an OpenID provider's).
    pub fn with_verifier(mut self, verifier: Option<Arc<dyn BearerVerifier>>) -> Self {
        self.verifier = verifier;
        self
    }

    /// The caller an `Authorization` header value stands for at `now`.
    pub fn authenticate(&self, authorization: Option<&str>, now: u64) -> Result<Principal, Error> {
        let presented = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Error::Missing)?;
        if let Some(verifier) = self.verifier.as_ref().filter(|v| v.accepts(presented)) {
            return verifier.verify(presented, now).map_err(Error::Rejected);
        }
        self.authenticate_digest(&digest_of(presented), now)
    }

    /// The caller a token stands for, by the SHA-256 of its secret: web
    /// sessions keep only that digest and look the token up again on each
    /// request, so revoking or expiring the token ends them.
    pub fn authenticate_digest(&self, digest: &[u8; 32], now: u64) -> Result<Principal, Error> {
        // Comparing digests keeps the comparison time independent of where
        // the presented token first differs from the admin token.
        let digest = *digest;
        if digest == self.admin_hash {
            return Ok(Principal {
                name: BUILTIN_ADMIN.to_owned(),
                role: Admin,
            });
        }
        let token = self
            .store
            .api_token_by_hash(&hex::encode(digest))?
            .ok_or(Error::Invalid)?;
        if let Some(at) = token.revoked_at {
            return Err(Error::Revoked {
                name: token.name,
                at,
            });
        }
        if let Some(at) = token.expires_at.filter(|at| *at <= now) {
            return Err(Error::Expired {
                name: token.name,
                at,
            });
        }
        Ok(Principal {
            name: token.name,
            role: token.role,
        })
    }

    /// Remember that `principal` made a request (for `token list`).
    pub fn touch(&self, principal: &Principal, now: u64) {
        // Provider users have no stored token to record the use on.
        if principal.is_builtin() || principal.name.starts_with(OIDC_PREFIX) {
            return;
        }
        if let Err(e) = self.store.touch_api_token(&principal.name, now) {
            tracing::warn!(token = %principal.name, error = %e, "recording token use failed");
        }
    }

    /// Mint a token; the secret is returned once and only its hash is kept.
    pub fn create(
        &self,
        name: &str,
        role: Role,
        ttl: Option<Duration>,
        now: u64,
    ) -> Result<(String, ApiTokenRecord), Error> {
        validate_name(name)?;
        if ttl.is_some_and(|t| t.as_secs() == 0) {
            return Err(Error::InvalidTtl);
        }
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let secret = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        let record = ApiTokenRecord {
            name: name.to_owned(),
            role,
            hash: token_hash(&secret),
            created_at: now,
            expires_at: ttl.map(|t| now.saturating_add(t.as_secs())),
            revoked_at: None,
            last_used: None,
        };
        self.store.create_api_token(&record, now)?;
        tracing::info!(token = %name, %role, "API token created");
        Ok((secret, record))
    }

    pub fn tokens(&self) -> Result<Vec<ApiTokenRecord>, Error> {
        Ok(self.store.api_tokens()?)
    }

    pub fn revoke(&self, name: &str, now: u64) -> Result<ApiTokenRecord, Error> {
        if name == BUILTIN_ADMIN {
            return Err(Error::Reserved);
        }
        let revoked = self
            .store
            .revoke_api_token(name, now)?
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        tracing::info!(token = %name, "API token revoked");
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_are_for_viewers_and_only_sync_and_rollback_for_operators() {
        for r in RULES {
            match r.method {
                "GET" => assert!(r.role <= Operator || r.route == "/tokens" || r.route == "/audit"),
                _ if r.route.ends_with("/sync") || r.route.ends_with("/rollback") => {
                    assert_eq!(r.role, Operator, "{} {}", r.method, r.route)
                }
                _ => assert_eq!(r.role, Admin, "{} {}", r.method, r.route),
            }
        }
        let unique: std::collections::HashSet<_> =
            RULES.iter().map(|r| (r.method, r.route)).collect();
        assert_eq!(unique.len(), RULES.len(), "a route has two rules");
        assert_eq!(rule_for("PUT", "/apps/{name}").role, Admin);
    }

    #[test]
    fn refusals_name_the_role_and_the_action() {
        let viewer = Principal {
            name: "ci".into(),
            role: Viewer,
        };
        let err = authorize(&viewer, &rule_for("POST", "/apps")).unwrap_err();
        assert_eq!(err.to_string(), "role viewer may not create apps");
        let operator = Principal {
            name: "ops".into(),
            role: Operator,
        };
        assert!(authorize(&operator, &rule_for("POST", "/apps/{name}/sync")).is_ok());
        assert!(authorize(&operator, &rule_for("DELETE", "/apps/{name}")).is_err());
    }

    #[test]
    fn names_are_checked_and_admin_is_reserved() {
        for ok in ["ci", "deploy-bot", "a.b_c", "0"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "Upper", "a b", "a/b", &"x".repeat(64)] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidName(_))),
                "{bad}"
            );
        }
        assert!(matches!(validate_name("admin"), Err(Error::Reserved)));
    }
}
