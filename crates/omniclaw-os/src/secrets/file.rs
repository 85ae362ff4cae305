//! The headless fallback: `<state dir>/secrets.json`, a JSON object from
//! dotted secret path to value, mode 0600. A file whose permissions are
//! wider is refused (read and write), never silently tightened: someone
//! else may already have read it, and the user should know.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::{check_value, Scope, SecretError, SecretName, SecretStore, StoreMode};

/// The file's name inside the state dir.
pub const FILE_NAME: &str = "secrets.json";

/// Secrets in a 0600 file of each profile's state dir.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileStore;

type Entries = BTreeMap<String, String>;

fn read(path: &Path) -> Result<Entries, SecretError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Entries::new()),
        Err(source) => {
            return Err(SecretError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    check_mode(path, &meta)?;
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(Entries::new());
    }
    // serde_json's messages name line and column, never the content.
    serde_json::from_str::<Entries>(&text).map_err(|e| SecretError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("line {} column {}", e.line(), e.column()),
    })
}

#[cfg(unix)]
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), SecretError> {
    // The state dir's ACL (private to the user) protects the file on Windows.
    Ok(())
}

/// Changes the entries under the file's lock (re-read under it, so two
/// processes setting different secrets both keep theirs), written 0600 from
/// the first byte, atomically; no `.bak` (a second copy of secrets helps
/// nobody).
fn change<T>(
    path: &Path,
    f: impl FnOnce(&mut Entries) -> Option<T>,
) -> Result<Option<T>, SecretError> {
    let write_err = |source| SecretError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_err)?;
    crate::fsx::update(path, crate::fsx::Options::private(), |_| {
        // Read through `read` for its mode check and messages.
        let mut entries = read(path)?;
        let Some(value) = f(&mut entries) else {
            return Ok((None, None));
        };
        let mut text = serde_json::to_string_pretty(&entries).map_err(|e| SecretError::Write {
            path: path.to_path_buf(),
            source: io::Error::other(e),
        })?;
        text.push('\n');
        Ok((Some(text.into_bytes()), Some(value)))
    })
    .map_err(|e| match e {
        crate::fsx::UpdateError::Refused(e) => e,
        crate::fsx::UpdateError::Io { source, .. } => write_err(source),
    })
}

impl FileStore {
    /// Creates `scope`'s secrets file (empty, 0600) when it does not exist,
    /// which routes the profile to it.
    pub fn create(scope: &Scope) -> Result<(), SecretError> {
        change(&scope.secrets_file(), |_| Some(())).map(drop)
    }
}

impl SecretStore for FileStore {
    fn get(&self, scope: &Scope, name: SecretName) -> Result<Option<String>, SecretError> {
        Ok(read(&scope.secrets_file())?.remove(name.path().as_ref()))
    }

    fn set(&self, scope: &Scope, name: SecretName, value: &str) -> Result<(), SecretError> {
        check_value(name, value)?;
        change(&scope.secrets_file(), |entries| {
            entries.insert(name.path().to_string(), value.to_string());
            Some(())
        })
        .map(drop)
    }

    fn remove(&self, scope: &Scope, name: SecretName) -> Result<bool, SecretError> {
        let path = scope.secrets_file();
        if !path.exists() {
            return Ok(false);
        }
        Ok(change(&path, |entries| {
            entries.remove(name.path().as_ref()).map(drop)
        })?
        .is_some())
    }

    fn mode(&self, scope: &Scope) -> StoreMode {
        StoreMode::File(scope.secrets_file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let scope = Scope::new("main", dir.path());
        let n = SecretName::TelegramBotToken;
        assert_eq!(FileStore.get(&scope, n).expect("get"), None);
        FileStore.set(&scope, n, "123:abc").expect("set");
        assert_eq!(
            FileStore.get(&scope, n).expect("get"),
            Some("123:abc".into())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(scope.secrets_file())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(FileStore.remove(&scope, n).expect("rm"));
        assert_eq!(FileStore.get(&scope, n).expect("get"), None);
    }

    #[cfg(unix)]
    #[test]
    fn wider_permissions_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let scope = Scope::new("main", dir.path());
        FileStore
            .set(&scope, SecretName::GatewayAuthToken, "t")
            .expect("set");
        let path = scope.secrets_file();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let before = std::fs::read(&path).expect("read");
        let err = FileStore
            .get(&scope, SecretName::GatewayAuthToken)
            .expect_err("too open");
        assert!(
            err.to_string().contains("mode 644") && err.to_string().contains("chmod 600"),
            "{err}"
        );
        assert!(FileStore
            .set(&scope, SecretName::GatewayAuthToken, "u")
            .is_err());
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn corrupt_file_names_position_not_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let scope = Scope::new("main", dir.path());
        let path = scope.secrets_file();
        std::fs::write(&path, "{\"gateway.auth.token\": hunter2}").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let err = FileStore
            .get(&scope, SecretName::GatewayAuthToken)
            .expect_err("corrupt")
            .to_string();
        assert!(err.contains("line 1") && !err.contains("hunter2"), "{err}");
    }
}
