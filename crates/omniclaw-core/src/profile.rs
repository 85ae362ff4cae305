//! Profile names: which isolated gateway instance a command speaks about.
//!
//! `default` (or no `--profile` at all) is the unsuffixed instance; any other
//! valid name scopes the state dir, config, workspace and service names.

use std::fmt;

/// Why a profile name was refused. The message always names the bad input and
/// the rule, so the user can retype it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("profile name is empty: give a name like `main` or `rescue`, or leave --profile out for the default profile")]
    Empty,
    #[error("profile name {name:?} is {len} characters long: at most 64 are allowed")]
    TooLong { name: String, len: usize },
    #[error("profile name {name:?} is invalid: it must start with a letter or digit and contain only letters, digits, `-` and `_` (for example `rescue` or `bot-2`)")]
    BadCharacters { name: String },
}

/// A validated, lower-cased profile name other than `default`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProfileName(String);

impl ProfileName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The profile a command runs under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    Default,
    Named(ProfileName),
}

impl Profile {
    /// Parses a user-given name (`^[a-z0-9][a-z0-9_-]{0,63}$`, case-insensitive).
    /// `default` maps to [`Profile::Default`].
    pub fn parse(raw: &str) -> Result<Profile, ProfileError> {
        if raw.is_empty() {
            return Err(ProfileError::Empty);
        }
        let len = raw.chars().count();
        if len > 64 {
            return Err(ProfileError::TooLong {
                name: raw.to_string(),
                len,
            });
        }
        let lower = raw.to_ascii_lowercase();
        let mut chars = lower.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !first_ok || !rest_ok {
            return Err(ProfileError::BadCharacters {
                name: raw.to_string(),
            });
        }
        if lower == "default" {
            Ok(Profile::Default)
        } else {
            Ok(Profile::Named(ProfileName(lower)))
        }
    }

    /// The name shown to users: `default` or the profile's own name.
    pub fn name(&self) -> &str {
        match self {
            Profile::Default => "default",
            Profile::Named(n) => n.as_str(),
        }
    }

    /// The suffix used in directory and service names, `None` for the default profile.
    pub fn suffix(&self) -> Option<&str> {
        match self {
            Profile::Default => None,
            Profile::Named(n) => Some(n.as_str()),
        }
    }

    pub fn is_default(&self) -> bool {
        matches!(self, Profile::Default)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Names of the per-profile service registrations on each platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNames {
    /// systemd user unit file name, e.g. `omniclaw-gateway-rescue.service`.
    pub systemd_unit: String,
    /// launchd label, e.g. `ai.omniclaw.rescue`.
    pub launchd_label: String,
    /// Windows scheduled task name, e.g. `OmniClaw Gateway (rescue)`.
    pub windows_task: String,
}

impl ServiceNames {
    pub fn for_profile(profile: &Profile) -> ServiceNames {
        match profile.suffix() {
            None => ServiceNames {
                systemd_unit: "omniclaw-gateway.service".into(),
                launchd_label: "ai.omniclaw.gateway".into(),
                windows_task: "OmniClaw Gateway".into(),
            },
            Some(name) => ServiceNames {
                systemd_unit: format!("omniclaw-gateway-{name}.service"),
                launchd_label: format!("ai.omniclaw.{name}"),
                windows_task: format!("OmniClaw Gateway ({name})"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Result<&str, &str>) {
        let got = Profile::parse(raw);
        match (got, expected) {
            (Ok(p), Ok(name)) => assert_eq!(p.name(), name, "input {raw:?}"),
            (Err(e), Err(fragment)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(fragment),
                    "input {raw:?}: {msg:?} lacks {fragment:?}"
                );
            }
            (got, expected) => panic!("input {raw:?}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn names() {
        check("main", Ok("main"));
        check("rescue", Ok("rescue"));
        check("Rescue", Ok("rescue"));
        check("default", Ok("default"));
        check("DEFAULT", Ok("default"));
        check("0bot", Ok("0bot"));
        check("bot_2-x", Ok("bot_2-x"));
        check(&"a".repeat(64), Ok(&"a".repeat(64)));
        check("", Err("empty"));
        check("-x", Err("must start with a letter or digit"));
        check("_x", Err("must start with a letter or digit"));
        check("a b", Err("\"a b\" is invalid"));
        check("a/b", Err("invalid"));
        check("a.b", Err("invalid"));
        check("ä", Err("invalid"));
        check(&"a".repeat(65), Err("65 characters long"));
    }

    #[test]
    fn default_has_no_suffix() {
        assert_eq!(
            Profile::parse("default").map(|p| p.suffix().map(String::from)),
            Ok(None)
        );
        assert_eq!(
            Profile::parse("rescue").map(|p| p.suffix().map(String::from)),
            Ok(Some("rescue".to_string()))
        );
    }

    #[test]
    fn service_names() {
        let d = ServiceNames::for_profile(&Profile::Default);
        assert_eq!(d.systemd_unit, "omniclaw-gateway.service");
        assert_eq!(d.launchd_label, "ai.omniclaw.gateway");
        assert_eq!(d.windows_task, "OmniClaw Gateway");
        let r = ServiceNames::for_profile(&Profile::parse("rescue").expect("valid"));
        assert_eq!(r.systemd_unit, "omniclaw-gateway-rescue.service");
        assert_eq!(r.launchd_label, "ai.omniclaw.rescue");
        assert_eq!(r.windows_task, "OmniClaw Gateway (rescue)");
    }
}
