//! Where a profile's secrets live: the OS keychain, or (opted in on a
//! headless machine) a 0600 file in the state dir.
//!
//! [`SecretStore`] is the small trait every command and gateway is handed;
//! [`Keyring`] is the real adapter (Secret Service on Linux, Keychain on
//! macOS, Credential Manager on Windows), [`FileStore`] the headless
//! fallback, [`MemoryStore`] the double for unit tests, and [`Routed`] picks
//! keyring or file per profile.
//!
//! # Entry naming
//!
//! One keychain entry per profile and secret: service `omniclaw`, account
//! `<profile>/<dotted secret path>@<state dir>`, e.g.
//! `main/gateway.auth.token@/home/ada/.omniclaw-main`. The state dir is part
//! of the account so that two homes (or two test sandboxes) with a profile of
//! the same name never share a secret. In the file store the profile is
//! implied by the file's state dir and the key is the dotted path.
//!
//! This module must never print, log or put a secret value into an error
//! message; errors name the profile, the secret path and the fix.

mod file;
mod keyring;
mod known;
mod memory;

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

pub use file::{FileStore, FILE_NAME};
pub use keyring::{Keyring, SERVICE as KEYRING_SERVICE};
pub use known::{known_values, profile_values};
pub use memory::MemoryStore;

/// The secrets a profile can hold, by their config path: the gateway's
/// and the bot's fixed ones, and the API key of each model provider
/// (`models.providers.<id>.apiKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretName {
    GatewayAuthToken,
    GatewayAuthPassword,
    GatewayRemoteToken,
    TelegramBotToken,
    ProviderApiKey(ProviderId),
}

/// A model provider's id (`^[a-z][a-z0-9_-]{0,63}$`), held inline so a
/// [`SecretName`] stays a plain copyable value.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProviderId {
    len: u8,
    bytes: [u8; 64],
}

impl ProviderId {
    pub fn parse(id: &str) -> Option<ProviderId> {
        if !omniclaw_core::config::is_provider_id(id) {
            return None;
        }
        let mut bytes = [0u8; 64];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        Some(ProviderId {
            len: u8::try_from(id.len()).ok()?,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII ever goes in (`parse` checks the pattern).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SecretName {
    /// The fixed secrets, which every profile may hold.
    pub const ALL: [SecretName; 4] = [
        SecretName::GatewayAuthToken,
        SecretName::GatewayAuthPassword,
        SecretName::GatewayRemoteToken,
        SecretName::TelegramBotToken,
    ];

    /// The dotted config path the secret belongs to.
    pub fn path(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            SecretName::GatewayAuthToken => "gateway.auth.token",
            SecretName::GatewayAuthPassword => "gateway.auth.password",
            SecretName::GatewayRemoteToken => "gateway.remote.token",
            SecretName::TelegramBotToken => "channels.telegram.botToken",
            SecretName::ProviderApiKey(id) => {
                return Cow::Owned(format!("models.providers.{id}.apiKey"))
            }
        })
    }

    /// Parses a dotted path; the error lists the valid names.
    pub fn parse(path: &str) -> Result<SecretName, SecretError> {
        if let Some(name) = SecretName::ALL.into_iter().find(|n| n.path() == path) {
            return Ok(name);
        }
        path.strip_prefix("models.providers.")
            .and_then(|rest| rest.strip_suffix(".apiKey"))
            .and_then(ProviderId::parse)
            .map(SecretName::ProviderApiKey)
            .ok_or_else(|| SecretError::UnknownName {
                name: path.to_string(),
            })
    }

    /// The fixed secrets and the API key of every provider `config` (a
    /// parsed config value, valid or not) names.
    pub fn known(config: Option<&serde_json::Value>) -> Vec<SecretName> {
        let mut names = SecretName::ALL.to_vec();
        if let Some(providers) = config
            .and_then(|v| v.pointer("/models/providers"))
            .and_then(serde_json::Value::as_object)
        {
            names.extend(
                providers
                    .keys()
                    .filter_map(|id| ProviderId::parse(id))
                    .map(SecretName::ProviderApiKey),
            );
        }
        names
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Whose secret: a profile at its state dir.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub profile: String,
    pub state_dir: PathBuf,
}

impl Scope {
    pub fn new(profile: impl Into<String>, state_dir: impl Into<PathBuf>) -> Scope {
        Scope {
            profile: profile.into(),
            state_dir: state_dir.into(),
        }
    }

    /// The keychain account of `name` in this scope (see the module docs).
    pub fn account(&self, name: SecretName) -> String {
        format!(
            "{}/{}@{}",
            self.profile,
            name.path(),
            self.state_dir.display()
        )
    }

    /// `omniclaw` or `omniclaw --profile P`, the command prefix for fixes.
    pub fn command(&self) -> String {
        if self.profile == "default" {
            "omniclaw".to_string()
        } else {
            format!("omniclaw --profile {}", self.profile)
        }
    }

    /// `<state dir>/secrets.json`, the file of the headless mode.
    pub fn secrets_file(&self) -> PathBuf {
        self.state_dir.join(FILE_NAME)
    }
}

/// Which kind of store holds a profile's secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreMode {
    Keychain,
    File(PathBuf),
    Memory,
}

impl fmt::Display for StoreMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreMode::Keychain => f.write_str("OS keychain"),
            StoreMode::File(p) => write!(f, "secrets file {} (mode 0600)", p.display()),
            StoreMode::Memory => f.write_str("memory"),
        }
    }
}

impl StoreMode {
    /// `keychain`, `file` or `memory`, for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreMode::Keychain => "keychain",
            StoreMode::File(_) => "file",
            StoreMode::Memory => "memory",
        }
    }
}

/// Why a secret could not be read, written or removed. Never holds a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no OS keychain is reachable ({detail}); on a headless machine keep secrets in a 0600 file in the state dir instead: add --secrets-file to the command (e.g. `{command} --secrets-file secrets set {name}`)")]
    Unreachable {
        detail: String,
        /// `omniclaw` or `omniclaw --profile P`, for the fix.
        command: String,
        name: SecretName,
    },
    #[error("the OS keychain answered but refused {account}: {detail}; unlock it ({}) and retry; to keep this profile's secrets in a 0600 file instead, unlock it once and run `{command} secrets move --to file` (or, for a profile not set up yet, `{command} --secrets-file setup`)", UNLOCK_HINT)]
    Refused {
        account: String,
        detail: String,
        /// `omniclaw` or `omniclaw --profile P`, for the fix.
        command: String,
    },
    #[error("the OS keychain refused {account}: {detail}; unlock the keychain (or log in to the desktop session) and retry")]
    Keychain { account: String, detail: String },
    #[error("{path} is readable by other users (mode {mode:o}); it holds secrets: run `chmod 600 {path}`, then retry", path = path.display())]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("cannot read the secrets file {path}: {source}; check its permissions", path = path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secrets file {path} is not a JSON object of strings ({detail}); fix or remove it, then set the secrets again", path = path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot write the secrets file {path}: {source}; check that the state dir is writable", path = path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{name} is not a secret name: use one of gateway.auth.token, gateway.auth.password, gateway.remote.token, channels.telegram.botToken, models.providers.<id>.apiKey")]
    UnknownName { name: String },
    #[error("the value for {name} is empty: give a non-empty secret")]
    Empty { name: SecretName },
    #[error("{name} does not read back as it was stored in the {place}")]
    Mismatch { name: SecretName, place: String },
}

/// How to unlock the keychain of this platform.
#[cfg(target_os = "macos")]
const UNLOCK_HINT: &str =
    "unlock the login keychain in Keychain Access, or log in to the desktop session";
#[cfg(windows)]
const UNLOCK_HINT: &str = "log in to the desktop session of this user";
#[cfg(not(any(target_os = "macos", windows)))]
const UNLOCK_HINT: &str =
    "log in to the desktop session, or run `gnome-keyring-daemon --unlock` and type the login password";

/// A place to keep secrets, one entry per (profile, secret).
pub trait SecretStore: Send + Sync {
    /// The secret, or `None` when it was never set (or was removed).
    fn get(&self, scope: &Scope, name: SecretName) -> Result<Option<String>, SecretError>;
    /// Stores (or replaces) the secret. An empty value is refused.
    fn set(&self, scope: &Scope, name: SecretName, value: &str) -> Result<(), SecretError>;
    /// Removes the secret; `true` when there was one.
    fn remove(&self, scope: &Scope, name: SecretName) -> Result<bool, SecretError>;
    /// Where this scope's secrets live.
    fn mode(&self, scope: &Scope) -> StoreMode;
    /// Whether the store would take a secret of this scope right now,
    /// leaving nothing behind: asked before a question is asked whose
    /// answer goes here (onboarding). The default reads one secret, all a
    /// store needs whose writes cannot fail where its reads succeed.
    fn probe(&self, scope: &Scope) -> Result<(), SecretError> {
        self.get(scope, SecretName::GatewayAuthToken).map(|_| ())
    }
}

/// The CLI's and the tray's store: the secrets file for a profile that opted
/// in (its state dir holds `secrets.json`, or `force_file` is set for this
/// run), the OS keychain otherwise.
pub struct Routed {
    keychain: Box<dyn SecretStore>,
    file: FileStore,
    force_file: bool,
}

impl Routed {
    pub fn new(keychain: Box<dyn SecretStore>, force_file: bool) -> Routed {
        Routed {
            keychain,
            file: FileStore,
            force_file,
        }
    }

    /// Keyring by default; `force_file` is the `--secrets-file` opt-in.
    pub fn system(force_file: bool) -> Routed {
        Routed::new(Box::new(Keyring), force_file)
    }

    fn pick(&self, scope: &Scope) -> &dyn SecretStore {
        if self.force_file || uses_file(&scope.state_dir) {
            &self.file
        } else {
            self.keychain.as_ref()
        }
    }
}

/// Where `secrets move` puts a profile's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Keychain,
    File,
}

/// What a move did.
#[derive(Debug, Default)]
pub struct Moved {
    /// The secrets now in the destination.
    pub names: Vec<SecretName>,
    /// Copies the source still holds because removing them failed (the
    /// destination has them; the message says how to remove them).
    pub leftovers: Vec<String>,
}

/// Why nothing was moved.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("the secrets of profile {profile} are already in the {place}; nothing to move")]
    AlreadyThere { profile: String, place: String },
    #[error("cannot read {name} from the {place}, so nothing was moved: {source}")]
    Source {
        name: SecretName,
        place: String,
        source: Box<SecretError>,
    },
    #[error("cannot store {name} in the {place}, so nothing was moved (the {from} still holds every secret): {source}")]
    Destination {
        name: SecretName,
        place: String,
        from: String,
        source: Box<SecretError>,
    },
}

impl Routed {
    /// Where `scope`'s secrets live now, whatever this run's `--secrets-file`.
    fn source(&self, scope: &Scope) -> (&dyn SecretStore, Destination) {
        if uses_file(&scope.state_dir) {
            (&self.file, Destination::File)
        } else {
            (self.keychain.as_ref(), Destination::Keychain)
        }
    }

    /// Moves the secrets `names` of `scope` (those stored) between the
    /// keychain and its 0600 file.
    /// The source is read whole first (one that cannot be read refuses the
    /// move); each value is stored and read back in the destination; only
    /// then the source's copies are removed — the secrets file last, since
    /// its existence is what routes the profile to it.
    pub fn move_to(
        &self,
        scope: &Scope,
        names: &[SecretName],
        to: Destination,
    ) -> Result<Moved, MoveError> {
        let (source, from) = self.source(scope);
        let place = |d: Destination| match d {
            Destination::Keychain => StoreMode::Keychain.to_string(),
            Destination::File => StoreMode::File(scope.secrets_file()).to_string(),
        };
        if from == to {
            return Err(MoveError::AlreadyThere {
                profile: scope.profile.clone(),
                place: place(to),
            });
        }
        let mut values = Vec::new();
        for &name in names {
            let value = source.get(scope, name).map_err(|e| MoveError::Source {
                name,
                place: place(from),
                source: Box::new(e),
            })?;
            values.extend(value.map(|v| (name, v)));
        }
        let dest: &dyn SecretStore = match to {
            Destination::File => &self.file,
            Destination::Keychain => self.keychain.as_ref(),
        };
        let mut written = Vec::new();
        let undo = |written: &[SecretName]| {
            for name in written {
                let _ = dest.remove(scope, *name);
            }
        };
        for (name, value) in &values {
            let stored = dest
                .set(scope, *name, value)
                .and_then(|()| dest.get(scope, *name))
                .and_then(|back| match back.as_deref() == Some(value.as_str()) {
                    true => Ok(()),
                    false => Err(SecretError::Mismatch {
                        name: *name,
                        place: place(to),
                    }),
                });
            if let Err(e) = stored {
                undo(&written);
                return Err(MoveError::Destination {
                    name: *name,
                    place: place(to),
                    from: place(from),
                    source: Box::new(e),
                });
            }
            written.push(*name);
        }
        let mut moved = Moved {
            names: written,
            leftovers: Vec::new(),
        };
        match to {
            Destination::File => {
                // Routes the profile to the file even when it holds nothing yet.
                if let Err(e) = FileStore::create(scope) {
                    undo(&moved.names);
                    return Err(MoveError::Destination {
                        name: SecretName::GatewayAuthToken,
                        place: place(to),
                        from: place(from),
                        source: Box::new(e),
                    });
                }
                for (name, _) in &values {
                    if let Err(e) = source.remove(scope, *name) {
                        moved.leftovers.push(format!(
                            "{name} is still in the OS keychain ({e}); remove it with your keychain tool (account {})",
                            scope.account(*name)
                        ));
                    }
                }
            }
            Destination::Keychain => {
                let file = scope.secrets_file();
                if let Err(e) = std::fs::remove_file(&file) {
                    moved.leftovers.push(format!(
                        "{} could not be removed ({e}): delete it by hand, or the profile keeps using it",
                        file.display()
                    ));
                }
                let _ = std::fs::remove_file(crate::fsx::lock_path(&file));
            }
        }
        Ok(moved)
    }
}

/// Whether the profile at `state_dir` keeps its secrets in a file.
pub fn uses_file(state_dir: &Path) -> bool {
    state_dir.join(FILE_NAME).is_file()
}

impl SecretStore for Routed {
    fn get(&self, scope: &Scope, name: SecretName) -> Result<Option<String>, SecretError> {
        self.pick(scope).get(scope, name)
    }
    fn set(&self, scope: &Scope, name: SecretName, value: &str) -> Result<(), SecretError> {
        self.pick(scope).set(scope, name, value)
    }
    fn remove(&self, scope: &Scope, name: SecretName) -> Result<bool, SecretError> {
        self.pick(scope).remove(scope, name)
    }
    fn mode(&self, scope: &Scope) -> StoreMode {
        self.pick(scope).mode(scope)
    }
    fn probe(&self, scope: &Scope) -> Result<(), SecretError> {
        self.pick(scope).probe(scope)
    }
}

/// A short, non-reversible fingerprint of a secret for status output:
/// `sha256:` and the first 12 hex digits of its SHA-256.
pub fn fingerprint(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A new gateway token from the OS CSPRNG: 48 lowercase hex characters.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn check_value(name: SecretName, value: &str) -> Result<(), SecretError> {
    if value.is_empty() {
        Err(SecretError::Empty { name })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, expected: Result<SecretName, &str>) {
        let got = SecretName::parse(path).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string), "{path}");
    }

    #[test]
    fn names_round_trip() {
        for n in SecretName::ALL {
            check(&n.path(), Ok(n));
        }
        let provider = SecretName::parse("models.providers.openai.apiKey").expect("provider key");
        assert_eq!(provider.path(), "models.providers.openai.apiKey");
        for bad in [
            "models.providers.Open AI.apiKey",
            "models.providers..apiKey",
            "models.providers.x.key",
        ] {
            assert!(SecretName::parse(bad).is_err(), "{bad}");
        }
        let config = serde_json::json!({"models": {"providers": {"openai": {}, "local": {}}}});
        assert_eq!(SecretName::known(Some(&config)).len(), 6);
        check(
            "gateway.port",
            Err("gateway.port is not a secret name: use one of gateway.auth.token, gateway.auth.password, gateway.remote.token, channels.telegram.botToken, models.providers.<id>.apiKey"),
        );
    }

    #[test]
    fn accounts_carry_profile_path_and_state_dir() {
        let s = Scope::new("main", "/h/.omniclaw-main");
        assert_eq!(
            s.account(SecretName::TelegramBotToken),
            "main/channels.telegram.botToken@/h/.omniclaw-main"
        );
        assert_eq!(
            s.secrets_file(),
            PathBuf::from("/h/.omniclaw-main/secrets.json")
        );
    }

    #[test]
    fn tokens_are_48_hex_and_differ() {
        let a = generate_token().expect("rng");
        let b = generate_token().expect("rng");
        assert_eq!(a.len(), 48);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn fingerprints_are_short_and_stable() {
        let f = fingerprint("secret");
        assert_eq!(f, "sha256:2bb80d537b1d");
        assert!(!f.contains("secret"));
    }

    #[test]
    fn moving_keeps_every_value_and_routes_the_profile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let scope = Scope::new("main", dir.path());
        let routed = Routed::new(Box::new(MemoryStore::default()), false);
        routed
            .set(&scope, SecretName::GatewayAuthToken, "tok")
            .expect("set");
        routed
            .set(&scope, SecretName::TelegramBotToken, "1:AA")
            .expect("set");
        let moved = routed
            .move_to(&scope, &SecretName::ALL, Destination::File)
            .expect("move");
        assert_eq!(moved.names.len(), 2);
        assert!(moved.leftovers.is_empty(), "{:?}", moved.leftovers);
        assert!(uses_file(dir.path()));
        assert_eq!(
            FileStore
                .get(&scope, SecretName::GatewayAuthToken)
                .expect("get"),
            Some("tok".into())
        );
        assert!(matches!(
            routed.move_to(&scope, &SecretName::ALL, Destination::File),
            Err(MoveError::AlreadyThere { .. })
        ));
        routed
            .move_to(&scope, &SecretName::ALL, Destination::Keychain)
            .expect("back");
        assert!(!uses_file(dir.path()));
        assert_eq!(
            routed
                .get(&scope, SecretName::TelegramBotToken)
                .expect("get"),
            Some("1:AA".into())
        );
    }

    /// A file others can read is refused as a source (Unix modes).
    #[cfg(unix)]
    #[test]
    fn a_source_that_cannot_be_read_moves_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let scope = Scope::new("main", dir.path());
        let routed = Routed::new(Box::new(MemoryStore::default()), false);
        FileStore
            .set(&scope, SecretName::GatewayAuthToken, "tok")
            .expect("set");
        std::fs::set_permissions(scope.secrets_file(), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let err = routed
            .move_to(&scope, &SecretName::ALL, Destination::Keychain)
            .expect_err("refused");
        assert!(matches!(err, MoveError::Source { .. }), "{err}");
        assert!(uses_file(dir.path()), "the file stays");
        assert_eq!(
            routed
                .keychain
                .get(&scope, SecretName::GatewayAuthToken)
                .expect("get"),
            None,
            "nothing reached the keychain"
        );
    }

    #[test]
    fn routed_picks_the_file_once_it_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let scope = Scope::new("main", dir.path());
        let routed = Routed::new(Box::new(MemoryStore::default()), false);
        assert_eq!(routed.mode(&scope), StoreMode::Memory);
        routed
            .set(&scope, SecretName::GatewayAuthToken, "in-memory")
            .expect("set");
        let forced = Routed::new(Box::new(MemoryStore::default()), true);
        forced
            .set(&scope, SecretName::GatewayAuthToken, "in-file")
            .expect("set");
        assert!(uses_file(dir.path()));
        assert_eq!(
            routed
                .get(&scope, SecretName::GatewayAuthToken)
                .expect("get"),
            Some("in-file".to_string())
        );
        assert_eq!(routed.mode(&scope), StoreMode::File(scope.secrets_file()));
    }
}
