//! The role map (`--oidc-role-map 'ops-admins=admin,devs=operator,*=viewer'`):
//! which role a provider's groups give. Pure: parsed once at start, applied
//! to each sign-in's groups.
//!
//! The highest role any matching rule gives wins, so the order of the rules
//! does not matter and a member of two groups gets the stronger one. `*`
//! matches every signed-in user; without it, a user in none of the named
//! groups is refused.

use super::Error;
use crate::roles::Role;

/// Rules from group name (or `*`) to role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMap {
    rules: Vec<(String, Role)>,
}

/// The group name that matches everyone.
pub(super) const ANYONE: &str = "*";

impl RoleMap {
    /// Parse `group=role,group=role,…`; an error names the bad entry.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut rules: Vec<(String, Role)> = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |reason: &str| Error::RoleMap {
                entry: entry.to_owned(),
                reason: reason.to_owned(),
            };
            let (group, role) = entry
                .split_once('=')
                .ok_or_else(|| bad("expected GROUP=ROLE"))?;
            let (group, role) = (group.trim(), role.trim());
            if group.is_empty() {
                return Err(bad("the group is empty"));
            }
            let role = match role {
                "admin" => Role::Admin,
                "operator" => Role::Operator,
                "viewer" => Role::Viewer,
                _ => return Err(bad("the role must be admin, operator or viewer")),
            };
            if rules.iter().any(|(g, _)| g == group) {
                return Err(bad("the group appears twice"));
            }
            rules.push((group.to_owned(), role));
        }
        if rules.is_empty() {
            return Err(Error::RoleMap {
                entry: text.to_owned(),
                reason: "no GROUP=ROLE rule".to_owned(),
            });
        }
        Ok(Self { rules })
    }

    /// The highest role a rule gives to a member of `groups`, or `None`
    /// when no rule matches (then the sign-in is refused).
    pub fn role_for<S: AsRef<str>>(&self, groups: &[S]) -> Option<Role> {
        self.rules
            .iter()
            .filter(|(g, _)| g == ANYONE || groups.iter().any(|m| m.as_ref() == g))
            .map(|(_, role)| *role)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_matching_role_wins_and_star_matches_everyone() {
        let map = RoleMap::parse("*=viewer, devs=operator,ops-admins=admin").unwrap();
        assert_eq!(map.role_for(&["ops-admins"]), Some(Role::Admin));
        assert_eq!(map.role_for(&["devs", "ops-admins"]), Some(Role::Admin));
        assert_eq!(map.role_for(&["devs"]), Some(Role::Operator));
        assert_eq!(map.role_for(&["sales"]), Some(Role::Viewer));
        assert_eq!(map.role_for::<&str>(&[]), Some(Role::Viewer));
    }

    #[test]
    fn without_star_a_user_in_no_named_group_gets_no_role() {
        let map = RoleMap::parse("ops-admins=admin,devs=operator").unwrap();
        assert_eq!(map.role_for(&["sales"]), None);
        assert_eq!(map.role_for::<&str>(&[]), None);
        // Group names are compared exactly.
        assert_eq!(map.role_for(&["Devs"]), None);
    }

    #[test]
    fn bad_entries_are_named() {
        for (text, entry, says) in [
            ("ops=admin,devs", "devs", "GROUP=ROLE"),
            ("ops=root", "ops=root", "admin, operator or viewer"),
            ("=admin", "=admin", "empty"),
            ("a=admin,a=viewer", "a=viewer", "twice"),
            (" , ", " , ", "no GROUP=ROLE"),
        ] {
            let error = RoleMap::parse(text).unwrap_err().to_string();
            assert!(error.contains(&format!("{entry:?}")), "{text}: {error}");
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
