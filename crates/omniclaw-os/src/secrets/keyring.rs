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
    keyring::Entry::new(SERVICE, &account).map_err(|e| map_err(&account, e))
}

/// Storage that cannot be reached at all (no D-Bus session, no Secret
/// Service) is `Unreachable`; anything else is a refusal of this entry.
fn map_err(account: &str, e: keyring::Error) -> SecretError {
    match e {
        keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => {
            SecretError::Unreachable {
                detail: inner.to_string(),
            }
        }
        // The value itself is not shown: it is (almost) a secret.
        keyring::Error::BadEncoding(_) => SecretError::Keychain {
            account: account.to_string(),
            detail: "the stored value is not UTF-8 text; set it again".into(),
        },
        other => SecretError::Keychain {
            account: account.to_string(),
            detail: other.to_string(),
        },
    }
}

impl SecretStore for Keyring {
    fn get(&self, scope: &Scope, name: SecretName) -> Result<Option<String>, SecretError> {
        match entry(scope, name)?.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(&scope.account(name), e)),
        }
    }

    fn set(&self, scope: &Scope, name: SecretName, value: &str) -> Result<(), SecretError> {
        check_value(name, value)?;
        entry(scope, name)?
            .set_password(value)
            .map_err(|e| map_err(&scope.account(name), e))
    }

    fn remove(&self, scope: &Scope, name: SecretName) -> Result<bool, SecretError> {
        match entry(scope, name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(map_err(&scope.account(name), e)),
        }
    }

    fn mode(&self, _scope: &Scope) -> StoreMode {
        StoreMode::Keychain
    }
}
