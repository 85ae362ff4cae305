//! Every secret value a gateway could come across in another profile's
//! output: what the rescue bot masks in the logs, configs and reports it
//! reads about its targets before any of it reaches its model or Telegram.
//!
//! Values are found by where they live, not by how they look: the secret
//! store's entries of each profile (the fixed ones, and the API key of each
//! provider its config names), plaintext secrets in its config (valid or
//! not, as long as it parses), and the `${VAR}` references it makes, read
//! from the environment given.

use omniclaw_core::config::{secret_refs, SecretRef};
use omniclaw_core::env::EnvSnapshot;
use omniclaw_core::paths::Resolved;
use serde_json::Value;

use super::{ProviderId, Scope, SecretName, SecretStore};
use crate::profiles;

/// The secret values of every profile under `current`'s home, `current`
/// included; unreadable entries are skipped (a profile whose store cannot
/// be read has nothing this process could leak from it).
pub fn known_values(current: &Resolved, env: &EnvSnapshot, store: &dyn SecretStore) -> Vec<String> {
    let mut out = Vec::new();
    match profiles::load(current, env) {
        Ok(inventory) => {
            for p in &inventory.profiles {
                let scope = Scope::new(p.profile.name(), p.state_dir.clone());
                out.extend(profile_values(&scope, p.config.value(), env, store));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the profiles; only this profile's secrets are masked");
            let scope = Scope::new(current.profile.name(), current.state_dir.clone());
            out.extend(profile_values(&scope, None, env, store));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The secret values of one profile: its store's, and its config's.
pub fn profile_values(
    scope: &Scope,
    config: Option<&Value>,
    env: &EnvSnapshot,
    store: &dyn SecretStore,
) -> Vec<String> {
    let mut names: Vec<SecretName> = SecretName::ALL.to_vec();
    let mut out = Vec::new();
    if let Some(value) = config {
        for (path, secret) in secret_refs(value) {
            match secret {
                SecretRef::Plain(v) => out.push(v),
                SecretRef::Env(var) => out.extend(env.get(&var).map(str::to_string)),
                SecretRef::Keychain => names.extend(SecretName::parse(&path).ok()),
            }
        }
        // A provider's key may be in the store without the config naming it.
        let providers = value
            .pointer("/models/providers")
            .and_then(Value::as_object);
        for id in providers.into_iter().flat_map(|m| m.keys()) {
            names.extend(ProviderId::parse(id).map(SecretName::ProviderApiKey));
        }
    }
    names.sort();
    names.dedup();
    for name in names {
        if let Ok(Some(v)) = store.get(scope, name) {
            out.push(v);
        }
    }
    out.retain(|v| !v.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemoryStore;
    use serde_json::json;

    #[test]
    fn a_profile_s_secrets_come_from_its_store_its_config_and_its_env() {
        let store = MemoryStore::default();
        let scope = Scope::new("main", "/tmp/.omniclaw-main");
        let other = Scope::new("work", "/tmp/.omniclaw-work");
        store
            .set(
                &scope,
                SecretName::TelegramBotToken,
                "123:bot-token-of-main",
            )
            .expect("set");
        store
            .set(
                &scope,
                SecretName::GatewayAuthToken,
                "gateway-token-of-main",
            )
            .expect("set");
        let openai = SecretName::ProviderApiKey(ProviderId::parse("openai").expect("id"));
        store.set(&scope, openai, "sk-provider-key").expect("set");
        store
            .set(&other, SecretName::TelegramBotToken, "456:not-this-profile")
            .expect("set");
        let config = json!({
            "gateway": {"auth": {"password": "plain-password-in-file"}},
            "models": {"providers": {
                "openai": {"baseUrl": "https://api.openai.com/v1"},
                "local": {"apiKey": "${LOCAL_KEY}"}
            }}
        });
        let env = EnvSnapshot::from_vars([("LOCAL_KEY", "key-from-env")]);
        let mut got = profile_values(&scope, Some(&config), &env, &store);
        got.sort();
        assert_eq!(
            got,
            [
                "123:bot-token-of-main",
                "gateway-token-of-main",
                "key-from-env",
                "plain-password-in-file",
                "sk-provider-key"
            ]
        );
        // Without a readable config, the store's fixed entries still count.
        let mut bare = profile_values(&scope, None, &env, &store);
        bare.sort();
        assert_eq!(bare, ["123:bot-token-of-main", "gateway-token-of-main"]);
    }
}
