//! The OS keychain through keyring-rs: Secret Service on Linux, Keychain on
//! macOS, Credential Manager on Windows. Entries are named as the parent
//! module documents; this adapter never caches a secret.

use super::{check_value, Scope, SecretError, SecretName, SecretStore, StoreMode};

/// The keychain service every OmniClaw entry is filed under.
pub const SERVICE: &str = "omniclaw";

/// The real keychain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keyring;

fn entry(scope: &Scope, name: SecretName) -> Result<keyring::Entry, SecretError> {
    let account = scope.account(name);
    keyring::Entry::new(SERVICE, &account).map_err(|e| map_err(scope, name, e))
}

/// D-Bus errors that mean the Secret Service was never reached: no session
/// bus (no address, its socket missing, autolaunch refused), or nobody
/// providing `org.freedesktop.secrets` on it.
const NOT_CONNECTED: &[&str] = &[
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoServer",
    "org.freedesktop.DBus.Error.NoNetwork",
    "org.freedesktop.DBus.Error.FileNotFound",
    "org.freedesktop.DBus.Error.NotSupported",
    "org.freedesktop.DBus.Error.BadAddress",
    "org.freedesktop.DBus.Error.Disconnected",
    "org.freedesktop.DBus.Error.Spawn.",
];

/// Whether a platform error says the keychain could not be reached at all.
/// The backend's D-Bus error keeps its name only in its debug form
/// (`D-Bus error: message (name)`), so that is what is looked at.
fn not_connected(inner: &(dyn std::error::Error + Send + Sync)) -> bool {
    let debug = format!("{inner:?}");
    NOT_CONNECTED.iter().any(|name| debug.contains(name))
}

/// Storage that cannot be reached at all (no D-Bus session, no Secret
/// Service) is `Unreachable`: a headless machine, where the secrets file is
/// the answer. A keychain that answered but would not serve (a locked
/// collection, a dismissed prompt, no default collection) is `Refused`:
/// unlocking it is the fix, and falling back to a file would hide that.
fn map_err(scope: &Scope, name: SecretName, e: keyring::Error) -> SecretError {
    let account = scope.account(name);
    let command = scope.command();
    match e {
        keyring::Error::PlatformFailure(inner) if not_connected(inner.as_ref()) => {
            SecretError::Unreachable {
                detail: inner.to_string(),
                command,
                name,
            }
        }
        keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => {
            SecretError::Refused {
                account,
                detail: refusal(&inner.to_string()),
                command,
            }
        }
        // The value itself is not shown: it is (almost) a secret.
        keyring::Error::BadEncoding(_) => SecretError::Keychain {
            account,
            detail: "the stored value is not UTF-8 text; set it again".into(),
        },
        other => SecretError::Keychain {
            account,
            detail: other.to_string(),
        },
    }
}

/// The backend's words for a refusal, with what they mean for the user.
fn refusal(detail: &str) -> String {
    if detail.contains("no result found") {
        format!(
            "{detail}: the keychain has no default collection (login keyring) to keep secrets in"
        )
    } else if mentions_word(detail, "prompt") {
        // Said when the unlock dialog could not be shown (no desktop
        // session) as much as when it was closed: only the lock is sure.
        "the login keyring is locked and was not unlocked".to_string()
    } else if mentions_word(detail, "locked") {
        format!("{detail}: the login keyring is locked")
    } else {
        detail.to_string()
    }
}

/// Whether `text` has `word` as a word of its own ("locked", not "blocked").
fn mentions_word(text: &str, word: &str) -> bool {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| w == word)
}

impl SecretStore for Keyring {
    fn get(&self, scope: &Scope, name: SecretName) -> Result<Option<String>, SecretError> {
        match entry(scope, name)?.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(scope, name, e)),
        }
    }

    fn set(&self, scope: &Scope, name: SecretName, value: &str) -> Result<(), SecretError> {
        check_value(name, value)?;
        entry(scope, name)?
            .set_password(value)
            .map_err(|e| map_err(scope, name, e))
    }

    fn remove(&self, scope: &Scope, name: SecretName) -> Result<bool, SecretError> {
        match entry(scope, name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(map_err(scope, name, e)),
        }
    }

    fn mode(&self, _scope: &Scope) -> StoreMode {
        StoreMode::Keychain
    }

    /// Stores and removes a throwaway entry of the scope: a keychain can
    /// answer reads and still refuse writes (no default collection to
    /// create entries in), and a locked one asks to be unlocked now, before
    /// any question, rather than after the last.
    fn probe(&self, scope: &Scope) -> Result<(), SecretError> {
        let name = SecretName::GatewayAuthToken;
        let account = format!("{}/.probe@{}", scope.profile, scope.state_dir.display());
        let entry = keyring::Entry::new(SERVICE, &account).map_err(|e| map_err(scope, name, e))?;
        entry
            .set_password("omniclaw-probe")
            .map_err(|e| map_err(scope, name, e))?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_err(scope, name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_reply_is_not_a_locked_keyring() {
        assert!(refusal("the collection is locked").contains("the login keyring is locked"));
        assert_eq!(
            refusal("a security policy blocked the reply"),
            "a security policy blocked the reply"
        );
    }

    #[derive(Debug)]
    struct Backend(&'static str);

    impl std::fmt::Display for Backend {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Backend {}

    fn check(e: keyring::Error, expected: &str) {
        let scope = Scope::new("k", "/h/.omniclaw-k");
        let got = map_err(&scope, SecretName::GatewayAuthToken, e).to_string();
        assert!(got.contains(expected), "{got}");
    }

    #[test]
    fn only_a_keychain_never_reached_is_unreachable() {
        let platform = |s| keyring::Error::PlatformFailure(Box::new(Backend(s)));
        check(
            platform("D-Bus error: The name org.freedesktop.secrets was not provided by any .service files (org.freedesktop.DBus.Error.ServiceUnknown)"),
            "no OS keychain is reachable",
        );
        check(
            platform("D-Bus error: Failed to connect to socket /x: No such file or directory (org.freedesktop.DBus.Error.FileNotFound)"),
            "`omniclaw --profile k --secrets-file secrets set gateway.auth.token`",
        );
        check(
            platform("D-Bus error: Cannot create an item in a locked collection (org.freedesktop.Secret.Error.IsLocked)"),
            "the OS keychain answered but refused k/gateway.auth.token@/h/.omniclaw-k",
        );
        check(
            keyring::Error::NoStorageAccess(Box::new(Backend("Secret Service: object locked"))),
            "the login keyring is locked",
        );
        check(
            keyring::Error::NoStorageAccess(Box::new(Backend("Secret Service: no result found"))),
            "no default collection",
        );
        check(
            keyring::Error::NoStorageAccess(Box::new(Backend(
                "Secret Service: unlock prompt was dismissed",
            ))),
            "`omniclaw --profile k --secrets-file setup`",
        );
    }

    #[test]
    fn a_prompt_nobody_saw_is_not_mentioned() {
        let scope = Scope::new("k", "/h/.omniclaw-k");
        let got = map_err(
            &scope,
            SecretName::GatewayAuthToken,
            keyring::Error::NoStorageAccess(Box::new(Backend(
                "Secret Service: unlock prompt was dismissed",
            ))),
        )
        .to_string();
        assert!(
            got.contains("the login keyring is locked and was not unlocked"),
            "{got}"
        );
        assert!(!got.contains("prompt"), "{got}");
    }
}
