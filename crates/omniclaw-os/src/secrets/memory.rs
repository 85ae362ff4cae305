//! An in-memory store for unit tests and embedded test gateways: the same
//! contract as the keychain, nothing persisted.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{check_value, Scope, SecretError, SecretName, SecretStore, StoreMode};

#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, String>>,
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, String>) -> T) -> T {
        // A poisoned map is still a consistent map: every operation is one insert or remove.
        let mut guard = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, scope: &Scope, name: SecretName) -> Result<Option<String>, SecretError> {
        Ok(self.with(|m| m.get(&scope.account(name)).cloned()))
    }

    fn set(&self, scope: &Scope, name: SecretName, value: &str) -> Result<(), SecretError> {
        check_value(name, value)?;
        self.with(|m| m.insert(scope.account(name), value.to_string()));
        Ok(())
    }

    fn remove(&self, scope: &Scope, name: SecretName) -> Result<bool, SecretError> {
        Ok(self.with(|m| m.remove(&scope.account(name)).is_some()))
    }

    fn mode(&self, _scope: &Scope) -> StoreMode {
        StoreMode::Memory
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove() {
        let s = MemoryStore::default();
        let main = Scope::new("main", "/h/.omniclaw-main");
        let other_home = Scope::new("main", "/other/.omniclaw-main");
        let n = SecretName::GatewayAuthToken;
        assert_eq!(s.get(&main, n).expect("get"), None);
        s.set(&main, n, "t1").expect("set");
        assert_eq!(s.get(&main, n).expect("get"), Some("t1".into()));
        assert_eq!(s.get(&other_home, n).expect("get"), None);
        assert!(s.set(&main, n, "").is_err());
        assert!(s.remove(&main, n).expect("rm"));
        assert!(!s.remove(&main, n).expect("rm"));
    }
}
